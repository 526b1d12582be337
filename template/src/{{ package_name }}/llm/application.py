"""The application as one MLflow model: base model, adapter, prompt version, index and settings.

``evaluate`` logs it and, when the gate passes, registers it as ``<tracking.model_name>`` with the
alias ``challenger``; ``promote`` moves ``champion`` as in every profile. Loaded with
``mlflow.pyfunc.load_model("models:/<name>@champion")`` it answers questions given as a table or
a mapping with a ``question`` column (its signature): ``{"answer", "sources"}`` for each, as
``assistant.py`` answers in the pipeline.
The model version holds the tokenizer (and the weights of ``tiny``; a hub model is loaded by id),
the adapter, the index, the prompt's text and ``prompts:/`` URI, and the generation and retrieval
settings, so it answers the same wherever it is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import path, project_root

SETTINGS_FILE = "application.json"


def settings(params: dict[str, Any], template: str, prompt: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": params["model"],
        "generation": params["generation"],
        "retrieval": params.get("retrieval"),
        "template": template,
        "prompt": prompt,
    }


def assistant_from(artifacts: dict[str, str]):
    """The ``Assistant`` a logged application describes (``artifacts``: name -> local path)."""
    from .assistant import Assistant
    from .generate import EndpointGenerator, LocalGenerator

    about = json.loads(Path(artifacts["settings"]).read_text(encoding="utf-8"))
    model = about["model"]
    adapter = artifacts.get("adapter")
    if model.get("provider", "local") == "openai" and adapter is None:
        generate = EndpointGenerator(model.get("endpoint", ""), model["base"], about["generation"])
    else:
        source = artifacts["base"] if model["base"] == "tiny" else model["base"]
        generate = LocalGenerator(source, about["generation"], adapter)
    retriever = None
    if about.get("retrieval") and "index" in artifacts:
        from .index import Retriever

        retriever = Retriever(Path(artifacts["index"]), about["retrieval"])
    return Assistant(
        about["template"], generate, retriever, int((about.get("retrieval") or {}).get("top_k", 0))
    )


def questions_of(model_input) -> list[str]:
    """The questions of a table (its ``question`` column, else its first), a mapping, a list or
    one string; lists inside cells (how MLflow may pass a mapping of lists) are flattened."""
    if hasattr(model_input, "columns"):  # a pandas DataFrame
        column = "question" if "question" in model_input.columns else model_input.columns[0]
        values = model_input[column].tolist()
    elif isinstance(model_input, dict):
        values = model_input.get("question", [])
    else:
        values = model_input
    if isinstance(values, str):
        return [values]
    flat = []
    for value in values:
        flat += [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return flat


def python_model():
    import mlflow.pyfunc

    class Application(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            self.assistant = assistant_from(dict(context.artifacts))

        def predict(self, context, model_input, params=None):
            results = self.assistant.answer(questions_of(model_input))
            return [{"answer": r["answer"], "sources": [c["id"] for c in r["context"]]} for r in results]

    return Application()


def requirements(params: dict[str, Any]) -> list[str]:
    """The packages the application needs, at the versions installed here (no inference run)."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["mlflow", "numpy", "tokenizers"]
    if params["model"].get("provider", "local") == "local" or "adapter" in params["paths"]:
        names += ["torch", "transformers", "safetensors"]
    if "adapter" in params["paths"]:
        names.append("peft")
    retrieval = params.get("retrieval") or {}
    if retrieval.get("store") == "qdrant":
        names.append("qdrant-client")
    if retrieval and retrieval.get("embedder") != "hashing":
        names.append("sentence-transformers")
    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def logger(params: dict[str, Any], template: str, prompt: dict[str, Any], root: Path | None = None):
    """A ``log_model`` for ``tracking.log_run``: logs the application with its artifacts."""
    root = root or project_root()

    def log():
        import tempfile

        import mlflow.pyfunc
        from mlflow.models import ModelSignature
        from mlflow.types import ColSpec, Schema

        from . import assistant

        with tempfile.TemporaryDirectory() as folder:
            about = Path(folder) / SETTINGS_FILE
            about.write_text(json.dumps(settings(params, template, prompt), indent=2), encoding="utf-8")
            artifacts = {"settings": str(about), "base": str(path(params, "base", root))}
            adapter = assistant.adapter_folder(params, root)
            if adapter is not None:
                artifacts["adapter"] = adapter
            if params.get("retrieval"):
                artifacts["index"] = str(path(params, "index", root))
            return mlflow.pyfunc.log_model(
                name="application",
                python_model=python_model(),
                artifacts=artifacts,
                code_paths=[str(Path(__file__).resolve().parents[1])],
                pip_requirements=requirements(params),
                signature=ModelSignature(inputs=Schema([ColSpec("string", "question")])),
            )

    return log
