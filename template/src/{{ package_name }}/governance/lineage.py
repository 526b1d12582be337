"""What an answer's line in the audit trail holds: the versions of everything that made it (the
application, base model, adapter, prompt and index, found once when the service starts) and the
request's own facts (its id, the chunks it used, the guardrails' decisions, tokens, cost). Texts
are held as SHA-256 digests of what the request log holds (already redacted): the trail proves
which answer was given without keeping personal data a second time."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

DIGEST = 16  # hex digits of a content digest: enough to tell versions apart


def digest_files(files: list[Path]) -> str | None:
    """One digest of the files' names and contents (None when there are none)."""
    found = sorted(f for f in files if f.is_file())
    if not found:
        return None
    total = hashlib.sha256()
    for file in found:
        total.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                total.update(block)
    return total.hexdigest()[:DIGEST]


def text_digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()[:DIGEST]


def registered_version(uri: str, tracking: dict[str, Any]) -> str | None:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> the version number it names."""
    if not uri.startswith("models:/"):
        return None
    name_part = uri.removeprefix("models:/")
    if "@" not in name_part:
        return name_part.rsplit("/", 1)[-1]
    name, alias = name_part.split("@", 1)
    try:
        from mlflow import MlflowClient

        from ..registry.tracking import connect

        connect(tracking)
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except Exception:  # the store is down or the alias moved: the URI alone is recorded
        return None


def versions(backend, params: dict[str, Any], root: Path) -> dict[str, Any]:
    """The versions every answer of this service shares."""
    from ..llm.prompts import versions as prompt_versions

    assistant = backend.assistant
    template_digest = hashlib.sha256(assistant.template.encode("utf-8")).hexdigest()
    answer = prompt_versions(params, root).get("answer") or {}
    prompt = {
        "sha256": template_digest[:DIGEST],
        "version": answer.get("version") if answer.get("sha256") == template_digest else None,
    }
    adapter = getattr(backend.generate, "adapter", None)
    retriever = getattr(assistant, "retriever", None)
    index = None
    if retriever is not None:
        folder = Path(retriever.folder)
        index = digest_files([folder / "chunks.jsonl", *folder.glob("*.json")])
    return {
        "application": backend.source,
        "application_version": registered_version(backend.source, params["tracking"]),
        "base_model": params["model"]["base"],
        "adapter": digest_files(list(Path(adapter).glob("*"))) if adapter else None,
        "prompt": prompt,
        "index": index,
    }


def record(shared: dict[str, Any], logged: dict[str, Any], traffic: str | None) -> dict[str, Any]:
    """The audit line's record of one answer: ``shared`` versions and the request log's ``logged``."""
    answers = logged.get("answers") or [logged.get("answer")]
    return {
        "request_id": logged["request_id"],
        **shared,
        "chunks": logged.get("sources", []),
        "chunks_kept_out": logged.get("dropped_chunks", []),
        "guardrails": {"rules": logged.get("rules", []), "blocked": logged.get("blocked")},
        "finish_reason": logged.get("finish_reason"),
        "question_sha256": text_digest(logged.get("question")),
        "answers_sha256": [text_digest(a) for a in answers],
        "tool_calls": [c["name"] for c in logged.get("tool_calls", [])],
        "agent": logged.get("agent") is not None,
        "prompt_tokens": logged.get("prompt_tokens"),
        "completion_tokens": logged.get("completion_tokens"),
        "cost": logged.get("cost"),
        "cached_from": logged.get("cached_from"),
        "route": logged.get("route"),  # chat/routing.py: main, or extractive (no model)
        "saved_cost": logged.get("saved_cost"),
        "traffic": traffic,
    }
