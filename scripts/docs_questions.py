"""Write the handbook's questions page (docs/questions.md) from copier.yml.

    python3 scripts/docs_questions.py          # rewrite docs/questions.md
    python3 scripts/docs_questions.py --check  # exit 1 when it is out of date (the tests run this)

copier.yml stays the one source of the questions: each question the template asks (computed
ones, `when: false`, left out), when it is asked, its default and its help text, and for a choice
every answer it accepts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cookiecutter_entry import derived, questions

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "questions.md"
HEAD = """# Questions and answers

Every question `copier copy` asks, in order, written from the template's `copier.yml` (the one
source: `python3 scripts/docs_questions.py` rewrites this page and the tests check it is current).
Answer them interactively, with `--defaults`, or with `--data key=value` and `--data-file`
([updating](updating.md) shows how). A default in *italics* is derived from earlier answers.

| question | asked when | default | what it decides |
|---|---|---|---|
"""


def cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def page() -> str:
    rows = []
    for name, spec in questions().items():
        when = spec.get("when", True)
        asked = "always" if when is True else "`" + cell(when).replace("{{ ", "").replace(" }}", "") + "`"
        default = spec.get("default", "")
        shown = "*derived*" if derived(default) else f"`{cell(default)}`" if default != "" else ""
        text = cell(spec.get("help", ""))
        choices = spec.get("choices")
        if choices and text:
            text = text.rstrip(".") + "."
        if isinstance(choices, dict):
            text += " Answers: " + ", ".join(f"`{cell(value)}`" for value in choices.values()) + "."
        elif isinstance(choices, list):
            text += " Answers: " + ", ".join(f"`{cell(value)}`" for value in choices) + "."
        rows.append(f"| `{name}` | {asked} | {shown} | {text} |")
    return HEAD + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    text = page()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python3 scripts/docs_questions.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
