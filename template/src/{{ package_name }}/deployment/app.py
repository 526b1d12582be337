"""Deployment: the HTTP prediction service (FastAPI on uvicorn).

- ``GET /health``: ``{"status": "ok", "model": "<where the model came from>"}``;
- ``GET /metrics``: Prometheus text: requests by HTTP status, latency histogram, errors by kind,
  scored rows and the distribution of the predictions;
- ``POST /predict`` with ``{"instances": [{column: value, ...}, ...]}``: ``{"predictions": [...]}``
  (and ``"probabilities"``, one list per row in the order of ``"classes"``, for a classifier).
  A malformed request (not JSON, no or empty ``instances``, a missing or unknown column, a value of
  the wrong type, a value too large for the model's arithmetic) gets 422 with a message naming the
  problem, a body over ``serving.max_body_bytes`` (default 1 MiB) gets 413: bad input never gets a 5xx.

Every served row is appended to the prediction log (``serving/log.py``). The model is loaded once at
start-up (``model.py``: packaged files, ``MODEL_DIR``, or ``MODEL_URI`` from the MLflow registry).
Host and port: ``serving`` in params.yaml, or ``--host``/``--port``.
"""

from typing import Any

from ..config import load_params
from ..serving.log import PredictionLog, log_dir
from . import model as model_module

VALUE_BUCKETS = (-1e4, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e4)


def _prediction_metrics(served: model_module.ServedModel, tally) -> dict[str, Any]:
    """The tabular route's own series: rows scored, and the predicted classes or values."""
    metrics: dict[str, Any] = {"rows": tally.counter("predicted_rows", "Rows scored")}
    if served.classes is not None:
        metrics["predictions"] = tally.counter("predictions", "Predicted rows by predicted class", "label")
    else:
        metrics["predictions"] = tally.histogram(
            "prediction_value", "Distribution of the predicted values", buckets=VALUE_BUCKETS
        )
        metrics["out_of_range"] = tally.counter(
            "predicted_out_of_range", "Rows predicted outside the target's range in training"
        )
    return metrics


def create_app(served: model_module.ServedModel | None = None, log: PredictionLog | None = None, params=None):
    """The FastAPI app serving ``served`` (default: ``model.load()``), logging to ``log``: the
    serving base (``serving/base.py``) with the tabular ``/predict`` route plugged in."""
    from ..serving.base import Refused, ServiceBase

    params = params if params is not None else load_params()
    served = served if served is not None else model_module.load(params)
    log = log if log is not None else PredictionLog(log_dir(params))
    validate = model_module.validator(served.signature)
    base = ServiceBase("Prediction service", served.source, log, params)
    metrics = {"registry": base.registry, "errors": base.errors, **_prediction_metrics(served, base.tally)}
    rows_scored, distribution = metrics["rows"], metrics["predictions"]
    classes = served.classes
    app = base.app
    app.state.served, app.state.log, app.state.metrics = served, log, metrics

    # Scoring a row is well under a millisecond of CPU: it runs on the event loop with no thread hop.
    # The body is validated in one pydantic-core pass over the raw bytes.
    def predict(body: bytes, traffic: str | None) -> dict[str, Any]:
        try:
            rows = validate(body)
            predictions, probabilities = served.predict_rows(rows)
        except model_module.RequestError as error:
            raise Refused("invalid_request", 422, str(error)) from None
        log.write(rows, predictions, traffic)
        rows_scored.add(n=len(predictions))
        if classes is not None:
            distribution.add_each(predictions)
            return {"predictions": predictions, "probabilities": probabilities, "classes": classes}
        distribution.observe_each(predictions)
        flags = served.out_of_range(predictions)
        if flags is None:
            return {"predictions": predictions}
        metrics["out_of_range"].add(n=sum(flags))
        return {"predictions": predictions, "out_of_range": flags, "target_range": served.target_range}

    base.post("/predict", predict, validate.schema)
    return app


def main(argv: list[str] | None = None) -> int:
    from ..serving.base import serve

    def describe(app, url: str) -> str:
        served = app.state.served
        return f"serving {served.source} ({served.task}, {len(served.columns)} columns) on {url}"

    return serve(__doc__, argv, create_app, describe)
