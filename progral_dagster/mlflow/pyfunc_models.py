"""MLflow pyfunc wrappers around the service's own model objects.

Every deployable model of the service is a plain Python object with ``predict(DataFrame) ->
DataFrame`` (e.g. :class:`~progral_dagster.ml.li_compound_model.LiCompoundModel`); one wrapper
serves them all, so ``mlflow.pyfunc.load_model("models:/<name>@champion").predict(df)`` works
from any Python with this package installed, and :func:`load_bundle` gives back the object for
richer use (feature building, per-polarity models, plots).
"""

from __future__ import annotations

import warnings

import mlflow.pyfunc

# The bundles validate their own input (columns by name); MLflow's type-hint validation is not used.
warnings.filterwarnings("ignore", message=".*type hints to the `predict` method.*")


class ModelBundle(mlflow.pyfunc.PythonModel):
    """Wraps a service model object (its ``predict`` takes and returns a DataFrame)."""

    def __init__(self, model):
        self.model = model

    def predict(self, context, model_input, params=None):  # noqa: ARG002 - MLflow's signature
        return self.model.predict(model_input)


def load_bundle(model_uri: str):
    """The service model object behind a registered pyfunc model."""
    loaded = mlflow.pyfunc.load_model(model_uri)
    inner = loaded.unwrap_python_model()
    return inner.model if isinstance(inner, ModelBundle) else inner
