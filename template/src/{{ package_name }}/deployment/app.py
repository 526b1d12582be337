"""Deployment: the HTTP prediction service (FastAPI on uvicorn).

- ``GET /health``: ``{"status": "ok", "model": "<where the model came from>"}``;
- ``GET /metrics``: Prometheus text: requests by HTTP status, latency histogram, errors by kind,
  scored rows and the distribution of the predictions;
- ``POST /predict`` with ``{"instances": [{column: value, ...}, ...]}``: ``{"predictions": [...]}``
  (and ``"probabilities"``, one list per row in the order of ``"classes"``, for a classifier).
  A malformed request (not JSON, no or empty ``instances``, a missing or unknown column, a value of
  the wrong type, a value too large for the model's arithmetic) gets 422 with a message naming the
  problem, a body over ``serving.max_body_bytes`` (default 1 MiB) gets 413: bad input never gets a 5xx.

Every served row is appended to the prediction log (``sink.py``). The model is loaded once at
start-up (``model.py``: packaged files, ``MODEL_DIR``, or ``MODEL_URI`` from the MLflow registry).
Host and port: ``serving`` in params.yaml, or ``--host``/``--port``.
"""

import json
import logging
import time
from typing import Any

from ..config import load_params
from . import model as model_module
from .sink import TRAFFIC_HEADER, PredictionLog, log_dir

MAX_BODY_BYTES = 1_048_576
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
VALUE_BUCKETS = (-1e4, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e4)
logger = logging.getLogger(__name__)


def _metrics(served: model_module.ServedModel):
    """The service's Prometheus metrics, in a registry of their own (one per app)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

    disable_created_metrics()  # no *_created series: the process start time says as much
    registry = CollectorRegistry()
    metrics: dict[str, Any] = {
        "registry": registry,
        "requests": Counter(
            "predict_requests", "POST /predict requests by HTTP status", ["status"], registry=registry
        ),
        "latency": Histogram(
            "predict_latency_seconds",
            "Time to answer POST /predict, reading the body to the answer",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        "errors": Counter(
            "predict_errors",
            "Refused (invalid_request) or failed (model) predictions",
            ["kind"],
            registry=registry,
        ),
        "rows": Counter("predicted_rows", "Rows scored", registry=registry),
    }
    if served.classes is not None:
        metrics["predictions"] = Counter(
            "predictions", "Predicted rows by predicted class", ["label"], registry=registry
        )
    else:
        metrics["predictions"] = Histogram(
            "prediction_value",
            "Distribution of the predicted values",
            buckets=VALUE_BUCKETS,
            registry=registry,
        )
    return metrics


def create_app(served: model_module.ServedModel | None = None, log: PredictionLog | None = None, params=None):
    """The FastAPI app serving ``served`` (default: ``model.load()``), logging to ``log``."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    params = params if params is not None else load_params()
    served = served if served is not None else model_module.load(params)
    log = log if log is not None else PredictionLog(log_dir(params))
    validate = model_module.validator(served.signature)
    metrics = _metrics(served)
    requests, latency, errors = metrics["requests"], metrics["latency"], metrics["errors"]
    rows_scored, distribution = metrics["rows"], metrics["predictions"]
    by_status = {status: requests.labels(str(status)) for status in (200, 413, 422, 500)}
    max_body = int((params.get("serving") or {}).get("max_body_bytes", MAX_BODY_BYTES))
    too_large = (
        f"the body is larger than {max_body} bytes (serving.max_body_bytes): send fewer rows per request"
    )
    by_label: dict[Any, Any] = {}
    classes = served.classes

    @asynccontextmanager
    async def lifespan(_app):
        yield
        log.close()

    app = FastAPI(title="Prediction service", lifespan=lifespan)
    app.state.served, app.state.log, app.state.metrics = served, log, metrics

    def answer(status: int, payload: dict[str, Any], start: float) -> Response:
        by_status[status].inc()
        latency.observe(time.perf_counter() - start)
        return Response(json.dumps(payload), status_code=status, media_type="application/json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": served.source}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics["registry"]), media_type=CONTENT_TYPE_LATEST)

    body_schema = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": validate.schema}}}
    }

    # async: scoring a row is well under a millisecond of CPU, run on the event loop with no thread hop.
    # The body is read and validated by hand (one pydantic-core pass over the raw bytes), which is
    # several times cheaper than FastAPI's body parsing; the schema still shows in /docs.
    @app.post("/predict", openapi_extra=body_schema)
    async def predict(request: Request) -> Response:
        start = time.perf_counter()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body:
            errors.labels("too_large").inc()
            return answer(413, {"detail": too_large}, start)
        body = bytearray()
        async for chunk in request.stream():  # a chunked body is counted as it arrives
            body += chunk
            if len(body) > max_body:
                errors.labels("too_large").inc()
                return answer(413, {"detail": too_large}, start)
        try:
            rows = validate(bytes(body))
            predictions, probabilities = served.predict_rows(rows)
        except model_module.RequestError as error:
            errors.labels("invalid_request").inc()
            return answer(422, {"detail": str(error)}, start)
        except Exception as error:  # the model itself failed: say so, count it
            logger.exception("prediction failed")
            errors.labels("model").inc()
            return answer(500, {"detail": f"the model failed: {type(error).__name__}: {error}"}, start)
        log.write(rows, predictions, request.headers.get(TRAFFIC_HEADER))
        rows_scored.inc(len(predictions))
        if classes is None:
            for value in predictions:
                distribution.observe(value)
            return answer(200, {"predictions": predictions}, start)
        for label in predictions:
            child = by_label.get(label)
            if child is None:
                child = by_label[label] = distribution.labels(str(label))
            child.inc()
        return answer(
            200, {"predictions": predictions, "probabilities": probabilities, "classes": classes}, start
        )

    return app


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..errors import GateError

    params = load_params()
    serving = params.get("serving") or {}
    options = parser(__doc__, "serve")
    options.add_argument(
        "--host", default=str(serving.get("host", "127.0.0.1")), help="default: serving.host"
    )
    options.add_argument(
        "--port", type=int, default=int(serving.get("port", 8000)), help="default: serving.port"
    )
    args = options.parse_args(argv)
    import uvicorn

    try:
        app = create_app(params=params)
    except (FileNotFoundError, ValueError) as error:
        raise GateError(f"cannot serve: {error}") from error
    served = app.state.served
    print(
        f"serving {served.source} ({served.task}, {len(served.columns)} columns) on http://{args.host}:{args.port}"
    )
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0
