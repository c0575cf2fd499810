"""Asset metadata helpers: small PNG plots embedded in Markdown, MLflow links, numbers."""

from __future__ import annotations

import base64
import io

import dagster as dg


def png_markdown(fig, *, title: str = "", dpi: int = 60) -> dg.MetadataValue:
    """A matplotlib figure as a small PNG embedded in Markdown (shown by the Dagster UI)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    head = f"**{title}**\n\n" if title else ""
    return dg.MetadataValue.md(f"{head}![{title or 'plot'}](data:image/png;base64,{data})")


def mlflow_links(settings, run_id: str, experiment_id: str, registered=None) -> dict:
    """Metadata linking a materialisation to its MLflow run and model version."""
    md = {
        "mlflow_run_id": dg.MetadataValue.text(run_id),
        "mlflow_experiment_id": dg.MetadataValue.text(str(experiment_id)),
        "mlflow_run": dg.MetadataValue.url(
            f"{settings.mlflow_ui_url}/#/experiments/{experiment_id}/runs/{run_id}"
        ),
    }
    if registered is not None:
        md["model_name"] = dg.MetadataValue.text(registered.name)
        md["model_version"] = dg.MetadataValue.text(str(registered.version))
        md["model_uri"] = dg.MetadataValue.text(registered.model_uri)
    return md


def numbers(d: dict, prefix: str = "") -> dict:
    """Floats/ints as metadata values (the UI charts them across materialisations)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int):
            out[prefix + k] = dg.MetadataValue.int(v)
        elif isinstance(v, float):
            out[prefix + k] = dg.MetadataValue.float(float(v))
    return out
