"""Cookiecutter's entry: render the project with Copier from the one template (template/).

`cookiecutter <this template>` asks the questions of cookiecutter.json (written from copier.yml by
scripts/cookiecutter_entry.py) and creates the project folder; this hook runs inside it and hands
every answer that differs from cookiecutter.json's default to Copier, which applies its own
defaults and validators, renders the project and writes .copier-answers.yml (so `make update`
works later). Copier comes from this Python, or from `uv tool run` when it is not installed here.
No template code runs beyond Copier's rendering: the same project as `copier copy`.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CONTEXT = json.loads({{ cookiecutter | jsonify | tojson }})
REMOTE = re.compile(r"^(gh:|gl:|bb:|git@|git\+|[a-z][a-z0-9+.-]*://)")


def answers(defaults: dict) -> dict:
    """The answers that differ from cookiecutter.json's defaults, typed as Copier's questions."""
    data = {}
    for name, default in defaults.items():
        if name.startswith("_") or name not in CONTEXT:
            continue
        value = CONTEXT[name]
        offered = default[0] if isinstance(default, list) else default
        if value == offered:
            continue  # Copier's own default: the same literal, or derived like Copier derives it
        if name == "llm_parts":
            value = [part for part in re.split(r"[,\s]+", str(value)) if part]
        data[name] = value
    return data


def main() -> int:
    repo = Path(CONTEXT["_repo_dir"])
    defaults = json.loads((repo / "cookiecutter.json").read_text())
    template = str(CONTEXT["_template"])
    source = template if REMOTE.match(template) else str(repo.resolve())
    ref = CONTEXT.get("_copier_vcs_ref") or CONTEXT.get("_checkout") or None
    data = answers(defaults)
    Path(".cookiecutter-entry").unlink(missing_ok=True)
    try:
        import copier
    except ImportError:
        copier = None
    if copier is not None:
        copier.run_copy(source, ".", data=data, vcs_ref=ref, defaults=True, overwrite=True, unsafe=False)
        return 0
    uv = shutil.which("uv")
    if uv is None:
        print("Copier renders this template: pip install copier (or uv), then run cookiecutter again.", file=sys.stderr)
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as answers_file:
        json.dump(data, answers_file)  # JSON is YAML
    command = [uv, "tool", "run", "--from", "copier>=9.4", "copier", "copy", "--defaults", "--overwrite"]
    command += ["--data-file", answers_file.name, *(["--vcs-ref", ref] if ref else []), source, "."]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
