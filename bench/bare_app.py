"""The serving benchmark's floor: a bare ASGI app doing the generated service's work and nothing else.

    python bench/bare_app.py --port PORT     (run in a generated project, with its environment)

One route, POST /predict with ``{"instances": [row, ...]}``: orjson parses the body, the project's own
compiled preprocessing (``deployment/model.py``: the same numpy code the service uses) builds the
feature matrix, the estimator's ``predict_proba`` is called once, orjson writes the answer. No
validation, no metrics, no prediction log, no framework: what is left is the cost of the work itself.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import orjson
import uvicorn
import yaml


def build_app():
    package = yaml.safe_load(Path(".copier-answers.yml").read_text())["package_name"]
    model_module = importlib.import_module(f"{package}.deployment.model")
    served = model_module.load()
    transform, estimator = served._fast, served._split[1]
    if transform is None:
        raise SystemExit("the model has no compiled preprocessing: nothing to compare")
    classes = served.classes

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/health":
            body = b'{"status": "ok"}'
        else:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            rows = orjson.loads(b"".join(chunks))["instances"]
            probabilities = estimator.predict_proba(transform(rows))
            predictions = [classes[i] for i in probabilities.argmax(axis=1).tolist()]
            body = orjson.dumps(
                {"predictions": predictions, "probabilities": probabilities.tolist(), "classes": classes}
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--port", type=int, required=True)
    args = options.parse_args()
    uvicorn.run(build_app(), host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
