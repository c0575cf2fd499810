"""The table of ``progral`` subcommands: name, help, argument setup, and the function that runs.

Command implementations live in their own modules and are imported only when run, so that
``progral --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
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


def _serve(p):
    p.add_argument("--host", default=os.environ.get("PROGRAL_BIND", "127.0.0.1"),
                   help="address both UIs bind to (default 127.0.0.1; put a reverse proxy with "
                   "authentication in front before binding anything else, see docs/security.md)")
    p.add_argument("--dagster-port", type=int, default=int(os.environ.get("PROGRAL_DAGSTER_PORT", 3000)))
    p.add_argument("--mlflow-port", type=int, default=int(os.environ.get("PROGRAL_MLFLOW_PORT", 5000)))
    p.add_argument("--no-seed", action="store_true", help="do not seed an empty share with simulated data")
    p.add_argument("--size", choices=["small", "full"], default="small", help="size of the seeded demo campaign")


def _simulate(p):
    p.add_argument("kind", choices=["campaign", "spectra", "images", "xps", "cycling", "cathodes"],
                   help="campaign = everything; spectra = ToF-SIMS spectra of Li compounds and mixtures; "
                   "images = ToF-SIMS mass images of electrode cross-sections; xps/cycling/cathodes = stored "
                   "cathode sheets with ToF-SIMS, XPS (VAMAS) and cycling (BioLogic .mpt) of their cells")
    p.add_argument("--out", required=True, help="folder to write the instrument files to (e.g. the share)")
    p.add_argument("--truth", default=None, help="folder for the ground truth (kept apart from the share)")
    p.add_argument("--seed", type=int, default=0, help="same seed -> byte-identical files")
    p.add_argument("--size", choices=["small", "full"], default="small")
    p.add_argument("--mixtures", default=None,
                   help='extra hidden-composition mixtures, e.g. "Li2CO3:0.5,LiOH:0.5;LiH:0.3,Li2O:0.7"')
    p.add_argument("--binning", type=int, default=None, help="ToF-SIMS channel binning (default 20)")
    p.add_argument("--matrix-strength", type=float, default=None,
                   help="scale of the matrix effects in mixture spectra (default 1; 0 = linear mixing)")


def _train(p):
    p.add_argument("assets", nargs="*", metavar="ASSET", help="assets to materialise (default: every feature, "
                   "model, promotion and prediction asset)")
    p.add_argument("--list", action="store_true", help="list the assets and exit")
    p.add_argument("--with-upstream", action="store_true", help="also materialise the assets they depend on")
    p.add_argument("--verbose", action="store_true", help="show Dagster's log")


def _predict(p):
    sub = p.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    c = sub.add_parser("composition", help="lithium-compound probabilities and composition of ToF-SIMS spectra",
                       description="Read IONTOF spectrum exports with the ordinary readers and apply the "
                       "classifier (default models:/tof-sims-li-compound-classifier@champion). Files named\n"
                       "alike but for the polarity marker (P_/N_, _pos/_neg) are paired.")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--model", default=None, help="model URI (default the champion)")
    c.add_argument("--json", action="store_true")
    c.add_argument("--home", default=None, help="service home (default: $PROGRAL_HOME or ./var)")
    r = sub.add_parser("retention", help="capacity retention of a stored cathode sample",
                       description="Compute the sample's features from the lake of --home and apply the champion:\n"
                       "the full model when its cells have cycling data, the surface-only model otherwise.")
    r.add_argument("--sample", required=True, help="sample_id from the sample sheet")
    r.add_argument("--model", default=None, help="model URI (default: the champion of the chosen variant)")
    r.add_argument("--alpha", type=float, default=0.1, help="1 - confidence of the interval (0.1, 0.05 or 0.32)")
    r.add_argument("--json", action="store_true")
    r.add_argument("--home", default=None, help="service home (default: $PROGRAL_HOME or ./var)")


def _segment(p):
    p.add_argument("dirs", nargs="+", metavar="IMAGE_DIR", help="folders of IONTOF image exports")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default=None, help="model URI (default models:/tof-sims-phase-segmentation@champion)")
    p.add_argument("--material", default=None, help="material when no sample sheet says it (NMC811, Si-graphite, ...)")
    p.add_argument("--json", action="store_true")


def _generate(p):
    p.add_argument("--model", required=True, help="model URI, e.g. models:/slicegan-nmc811@champion")
    p.add_argument("--size", type=int, nargs="+", default=[128], help="edge, or three edges, in voxels")
    p.add_argument("--out", required=True, help="output TIFF (label values as in the training images)")
    p.add_argument("--seed", type=int, default=None, help="latent seed (same seed, same volume)")
    p.add_argument("--periodic", action="store_true", help="periodic along every axis")
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    p.add_argument("--json", action="store_true")


def _metrics(p):
    p.add_argument("volume", metavar="VOLUME.tif", help="2D or 3D label image (TIFF)")
    p.add_argument("--phase", action="append", metavar="LABEL",
                   help="label value as stored in the file (repeatable; default: every label)")
    p.add_argument("--axis", type=int, default=0, help="axis of the tortuosity solve (default 0)")
    p.add_argument("--voxel-size", type=float, default=None, metavar="UM",
                   help="voxel edge in micrometres (default: from the TIFF's ImageJ tags, else per-voxel units)")
    p.add_argument("--no-tortuosity", action="store_true", help="skip the (slow) diffusion solve")
    p.add_argument("--json", action="store_true", help="volume_fraction, specific_surface_area, "
                   "tortuosity_factor, relative_diffusivity per phase, as JSON")


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
    Command("simulate", "write simulated instrument files with ground truth", _simulate, "simulate:run",
            home=False,
            description="Write simulated instrument files in the real formats (IONTOF exports, VAMAS,\n"
            "BioLogic .mpt) plus a samples.csv sheet to --out, and the ground truth to --truth."),
    Command("train", "train models now: feature, model, promotion and prediction assets, in-process", _train,
            "train:run",
            description="Materialise the feature, model, promotion and prediction assets in this process\n"
            "(the batch counterpart of the automation in the UI). Prints metrics and promotion decisions."),
    Command("predict", "apply a registered model to files or samples", _predict, "predict:run",
            home=False),
    Command("segment", "segment ToF-SIMS image exports into phases and particles", _segment, "segment:run",
            description="Segment the IONTOF image exports in each folder (grouped by measurement name) with the\n"
            "champion model and write <name>.tif, .phases.json, .particles.csv and .overlay.png to --out."),
    Command("generate-3d", "generate a 3D microstructure with a SliceGAN generator", _generate,
            "microstructure:run_generate",
            description="Generate a label volume of any size from a registered SliceGAN generator\n"
            "(e.g. models:/slicegan-nmc811@champion) and write it as a TIFF."),
    Command("microstructure-metrics", "volume fraction, surface area, tortuosity of a label volume", _metrics,
            "microstructure:run_metrics", home=False,
            description="Metrics of a 2D or 3D label image per phase: volume fraction, specific surface area\n"
            "(face counting, as TauFactor), tortuosity factor and relative diffusivity along --axis."),
    Command("serve", "run the service: dagster dev (sensor on) + MLflow UI on 127.0.0.1", _serve, "serve:run",
            description="Seed an empty share with a small simulated campaign, then start `dagster dev`\n"
            "(webserver + daemon, sensor on) and the MLflow UI, and print their URLs. Ctrl-C stops both."),
]


def register(cmd: Command) -> None:
    """Add a command (used by modules that add their own subcommands)."""
    COMMANDS.append(cmd)
