"""Registering models under stable names and reading the champion by alias."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

CHAMPION = "champion"


def requirements(*dists: str) -> list[str]:
    """Pinned pip requirements of the installed distributions (skips MLflow's slow inference)."""
    out = []
    for d in dists:
        try:
            out.append(f"{d}=={metadata.version(d)}")
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class Registered:
    name: str
    version: str
    run_id: str
    model_uri: str


def _register(name: str, model_info, run_id: str) -> Registered:
    import mlflow

    mv = mlflow.register_model(model_info.model_uri, name, await_registration_for=0)
    return Registered(name, str(mv.version), run_id, f"models:/{name}/{mv.version}")


def log_sklearn(model, name: str, X_example, *, trusted_types: list[str] | None = None,
                pyfunc_predict_fn: str = "predict") -> Registered:
    """Log an sklearn model (skops format) with signature and input example, and register it."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    pred = getattr(model, pyfunc_predict_fn)(X_example)
    sig = infer_signature(X_example, pred)
    info = mlflow.sklearn.log_model(
        model, name="model", signature=sig, input_example=X_example,
        pip_requirements=requirements("scikit-learn", "numpy", "pandas", "skops"),
        skops_trusted_types=trusted_types, pyfunc_predict_fn=pyfunc_predict_fn,
        serialization_format="skops",
    )
    return _register(name, info, mlflow.active_run().info.run_id)


def log_pyfunc(python_model, name: str, input_example, *, artifacts: dict | None = None,
               extra_requirements: tuple[str, ...] = ()) -> Registered:
    """Log a pyfunc model (wrapping the service's own classes) and register it."""
    import mlflow
    import mlflow.pyfunc

    info = mlflow.pyfunc.log_model(
        name="model", python_model=python_model, artifacts=artifacts, input_example=input_example,
        pip_requirements=requirements("numpy", "pandas", "scikit-learn", "scikit-image", *extra_requirements),
    )
    return _register(name, info, mlflow.active_run().info.run_id)


def champion(name: str):
    """The ModelVersion holding the ``champion`` alias, or None."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None


def set_champion(name: str, version: str) -> None:
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, str(version))


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"
