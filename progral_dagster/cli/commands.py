"""The table of ``progral`` subcommands: name, help, argument setup, and the function that runs.

Command implementations live in their own modules and are imported only when run, so that
``progral --help`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Command:
    name: str
    help: str
    configure: Callable
    target: str  # "module:function" inside progral_dagster.cli
    description: str | None = None
    home: bool = True

    def run(self, args):
        mod, fn = self.target.split(":")
        return getattr(importlib.import_module(f"progral_dagster.cli.{mod}"), fn)(args)


def _ingest(p):
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (walked recursively)")
    p.add_argument("--json", action="store_true", help="machine-readable result")


def _sql(p):
    p.add_argument("query", metavar="QUERY", help="SQL over the warehouse views (see `progral tables`)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")


def _tables(p):
    p.add_argument("--json", action="store_true")


def _status(p):
    p.add_argument("--json", action="store_true")


COMMANDS: list[Command] = [
    Command("ingest", "ingest files or folders now (same assets as the share sensor, no daemon)", _ingest,
            "ingest:run",
            description="Ingest files or folders into the lake through the ingestion assets, in this process.\n"
            "Files inside the share are recorded by their path relative to the share, others by absolute path.\n"
            "Prints progress and a summary: ingested / already present / rejected with reasons."),
    Command("sql", "run SQL on the warehouse views", _sql, "query:run_sql",
            description="Run one SQL statement on an in-memory DuckDB holding the lake's views.\n"
            "Example: progral sql \"select technique, count(*) from measurements group by 1\""),
    Command("tables", "list the warehouse views with row counts and columns", _tables, "query:run_tables"),
    Command("status", "counts per technique and format, latest ingestions, rejected files", _status,
            "query:run_status"),
]


def register(cmd: Command) -> None:
    """Add a command (used by modules that add their own subcommands)."""
    COMMANDS.append(cmd)
