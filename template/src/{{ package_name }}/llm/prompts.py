"""Prompt engineering: the templates in ``prompts/``, versioned in MLflow's prompt registry.

Every ``prompts/<name>.txt`` is a template in MLflow's syntax (``{{variable}}``). It must use the
variables the pipeline fills (``required``: the question, and the retrieved context when the
project has retrieval; for ``agent.txt``, the agent's prompt, the tools it may call); a template
that lacks one stops the stage, naming the file. A template whose
text differs from the latest registered version is registered as ``<tracking.model_name>-<name>``,
and the alias ``challenger`` points at the version in use. ``paths.prompts`` records, per template,
the registered name, version and ``prompts:/`` URI: later stages log it with their runs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from .. import reports
from ..config import load_params, path, project_root
from ..errors import GateError

PROMPTS_DIR = "prompts"
ALIAS = "challenger"
VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


AGENT = "agent"  # prompts/agent.txt: the agent's system prompt (tools/agent.py), in agent projects


def required(params: dict[str, Any], name: str = "answer") -> set[str]:
    """The variables template ``name`` must use: ``{{tools}}`` for the agent's, else the question
    (and the retrieved context, with retrieval)."""
    if name == AGENT:
        return {"tools"}
    return {"question", "context"} if params.get("retrieval") else {"question"}


def variables(template: str) -> set[str]:
    return set(VARIABLE.findall(template))


def render(template: str, **values: str) -> str:
    """The template with its variables filled (MLflow's syntax: ``{{name}}``)."""
    missing = variables(template) - set(values)
    if missing:
        raise GateError(f"the prompt needs {', '.join(sorted(missing))}")
    return VARIABLE.sub(lambda match: str(values[match.group(1)]), template)


def templates(root: Path) -> dict[str, str]:
    folder = root / PROMPTS_DIR
    found = {file.stem: file.read_text(encoding="utf-8") for file in sorted(folder.glob("*.txt"))}
    if not found:
        raise GateError(f"no prompt template in {PROMPTS_DIR}/ (a <name>.txt with {{{{question}}}})")
    return found


def check(found: dict[str, str], params: dict[str, Any]) -> None:
    if "answer" not in found:
        raise GateError(f"{PROMPTS_DIR}/answer.txt is missing: the application answers with that template")
    for name, text in found.items():
        missing = required(params, name) - variables(text)
        if missing:
            raise GateError(
                f"{PROMPTS_DIR}/{name}.txt does not use {', '.join('{{' + v + '}}' for v in sorted(missing))}: "
                "the pipeline fills it, and a prompt without it answers without it"
            )


def versions(params: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """The prompt versions the ``prompts`` stage registered (every run records the ones it used)."""
    import json

    file = path(params, "prompts", root)
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}


def register(found: dict[str, str], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Register what changed; returns ``{name: {"name", "version", "uri", "sha256", "registered"}}``."""
    import mlflow.genai

    from ..registry import tracking

    tracking.connect(settings)
    versions = {}
    for name, text in found.items():
        registered_name = f"{settings['model_name']}-{name}"
        latest = mlflow.genai.load_prompt(f"prompts:/{registered_name}@latest", allow_missing=True)
        new = latest is None or latest.template != text
        prompt = (
            mlflow.genai.register_prompt(registered_name, text, commit_message="prompts stage")
            if new
            else latest
        )
        mlflow.genai.set_prompt_alias(registered_name, ALIAS, prompt.version)
        versions[name] = {
            "name": registered_name,
            "version": int(prompt.version),
            "uri": f"prompts:/{registered_name}/{prompt.version}",
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            "registered": new,
        }
    return versions


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "prompts").parse_args(argv)
    params, root = load_params(), project_root()
    found = templates(root)
    check(found, params)
    versions = register(found, params["tracking"])
    # What later stages depend on: the same file whenever the templates are the same.
    reports.write_json(
        path(params, "prompts"),
        {name: {k: v for k, v in entry.items() if k != "registered"} for name, entry in versions.items()},
    )
    for name, entry in versions.items():
        state = "registered" if entry["registered"] else "unchanged"
        print(f"prompt {name}: {state}, {entry['uri']} (alias {ALIAS})")
    return 0
