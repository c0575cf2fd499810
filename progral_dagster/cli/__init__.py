"""The ``progral`` command. Subcommand first, options after it; ``--home`` defaults to
``PROGRAL_HOME`` (``./var``). Run ``progral SUBCOMMAND --help`` for each command's options."""

from __future__ import annotations

import argparse
import sys
import warnings

DESCRIPTION = """\
ProGrAL lake: ingest instrument files (ToF-SIMS, XPS, cyclers, label images) into a Parquet
lake queryable with DuckDB, and train / apply the lab's models (MLflow registry).

The service itself runs under Dagster (see README: `make run`); these commands work on the
same home without a daemon.
"""


def _home(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", default=None, help="service home (default: $PROGRAL_HOME or ./var)")


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(prog="progral", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for spec in commands.COMMANDS:
        p = sub.add_parser(spec.name, help=spec.help, description=spec.description or spec.help,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        spec.configure(p)
        if spec.home:
            _home(p)
        p.set_defaults(_run=spec.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="dagster")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
