"""How a scikit-learn model is logged to MLflow: the flavour the MLOps profile plugs into the
profile-neutral ``registry.tracking.log_run``."""

from __future__ import annotations

import contextlib
import logging
from typing import Any


@contextlib.contextmanager
def _quiet(*loggers: str):
    """Hide known, expected warnings (our own model, a uv environment without pip)."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def sklearn_logger(model, features, signature: list[dict[str, Any]] | None = None):
    """A ``log_model`` for ``log_run``: the fitted pipeline with its signature and an input example.
    ``signature``: the input columns as ``signature.json`` lists them (optional columns included);
    default: the columns of ``features``."""

    def log_model():
        import json
        import warnings

        import cloudpickle
        import mlflow
        import sklearn
        from mlflow.models import ModelSignature, infer_signature
        from mlflow.types import Schema

        example = features.head(5)
        with warnings.catch_warnings():
            # MLflow's hint about integer columns and missing values is for inputs inferred from
            # these five rows; the input schema comes from signature.json, optional columns included.
            if signature is not None:
                warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            inferred = infer_signature(example, model.predict(example))
        if signature is not None:
            inferred = ModelSignature(
                inputs=Schema.from_json(json.dumps(signature)), outputs=inferred.outputs
            )
        with _quiet("mlflow.sklearn", "mlflow.utils.environment"):
            return mlflow.sklearn.log_model(
                model,
                name="model",
                signature=inferred,
                input_example=example,
                # The model never leaves your own registry; cloudpickle loads faster than skops
                # and needs no list of trusted types for tree ensembles.
                serialization_format="cloudpickle",
                # Explicit requirements skip MLflow's slow inference of them.
                pip_requirements=[
                    f"scikit-learn=={sklearn.__version__}",
                    f"cloudpickle=={cloudpickle.__version__}",
                ],
            )

    return log_model
