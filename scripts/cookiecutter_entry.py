"""Write cookiecutter.json from copier.yml: the cookiecutter entry asks Copier's questions.

    python3 scripts/cookiecutter_entry.py          # rewrite cookiecutter.json
    python3 scripts/cookiecutter_entry.py --check  # exit 1 when it is out of date (the tests run this)

copier.yml stays the one source of the questions and of the project: `cookiecutter <template>`
prompts for the same questions with the same literal defaults (a default Copier derives from other
answers is offered as empty, meaning "derived"), and hooks/post_gen_project.py hands the answers
that differ from these defaults to Copier, which renders `template/` with its own defaults and
validators and writes `.copier-answers.yml`, so the project can use `make update` later.
Computed questions (`when: false`) are left out: Copier derives them. A multiselect answer is
a comma-separated string (cookiecutter has no multiselect).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "cookiecutter.json"


def questions() -> dict[str, dict]:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    return {
        name: spec
        for name, spec in config.items()
        if not name.startswith("_") and isinstance(spec, dict) and spec.get("when") is not False
    }


def derived(value) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def entry() -> dict:
    context: dict = {}
    prompts: dict = {}
    for name, spec in questions().items():
        default = spec.get("default", "")
        when = spec.get("when")
        note = ""
        if isinstance(when, str) and "profile == 'llmops'" in when:
            note = " [llmops]"
        elif isinstance(when, str) and "profile == 'mlops'" in when:
            note = " [mlops]"
        help_text = (spec.get("help") or name).strip() + note
        choices = spec.get("choices")
        if spec.get("multiselect"):
            values = list(choices.values()) if isinstance(choices, dict) else list(choices)
            context[name] = ", ".join(default)
            prompts[name] = f"{help_text} (comma-separated: {', '.join(values)})"
        elif choices:
            labels = choices if isinstance(choices, dict) else {str(c): c for c in choices}
            values = [default] + [v for v in labels.values() if v != default]
            context[name] = values
            prompts[name] = {"__prompt__": help_text, **{v: label for label, v in labels.items()}}
        elif derived(default):
            context[name] = ""
            prompts[name] = f"{help_text} (empty: derived from the answers before)"
        else:
            context[name] = default
            prompts[name] = help_text
    context["_copier_vcs_ref"] = ""  # the template release Copier renders; empty: the newest tag
    context["__folder"] = "{{ cookiecutter.project_slug or (cookiecutter.project_name | slugify) }}"
    context["__prompts__"] = prompts
    return context


def main(argv: list[str]) -> int:
    text = json.dumps(entry(), indent=2, ensure_ascii=False) + "\n"
    if argv == ["--check"]:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print("cookiecutter.json is out of date: python3 scripts/cookiecutter_entry.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
