"""The application: a question in, an answer grounded in the project's documents out.

One ``Assistant`` puts the pieces together, the same way wherever it runs (fine-tuning formats its
training prompts with it, evaluation answers held-out questions with it, the registered MLflow
model and the service answer users with it): the top ``retrieval.top_k`` chunks of the index for
the question (when the project has retrieval), the prompt template with ``{{question}}`` and
``{{context}}`` filled, and the generator (``generate.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import path, project_root
from . import prompts as prompt_templates

PROMPT = "answer"  # prompts/answer.txt: the template the application answers with
CONTEXT_SEPARATOR = "\n\n"


class Assistant:
    def __init__(self, template: str, generate=None, retriever=None, top_k: int = 3):
        self.template, self.generate = template, generate
        self.retriever, self.top_k = retriever, top_k

    def contexts(self, questions: list[str]) -> list[list[dict[str, Any]]]:
        """The retrieved chunks of each question (none without retrieval)."""
        if self.retriever is None:
            return [[] for _ in questions]
        return self.retriever.search(questions, self.top_k)

    def prompts(self, questions: list[str], contexts: list[list[dict[str, Any]]]) -> list[str]:
        needed = prompt_templates.variables(self.template)
        out = []
        for question, found in zip(questions, contexts, strict=True):
            values = {"question": question, "context": CONTEXT_SEPARATOR.join(c["text"] for c in found)}
            out.append(
                prompt_templates.render(self.template, **{k: values[k] for k in needed if k in values})
            )
        return out

    def answer(self, questions: list[str], adapter: bool = True) -> list[dict[str, Any]]:
        """``{"question", "answer", "context"}`` per question; context: the chunks the answer had.
        ``adapter`` False: the base model's answers (the fine-tuned adapter switched off)."""
        if self.generate is None:
            raise RuntimeError("this Assistant has no generator (it only formats prompts)")
        contexts = self.contexts(questions)
        answers = self.generate(self.prompts(questions, contexts), adapter=adapter)
        return [
            {"question": q, "answer": a, "context": c}
            for q, a, c in zip(questions, answers, contexts, strict=True)
        ]


def adapter_folder(params: dict[str, Any], root: Path | None = None) -> str | None:
    """The fine-tuned adapter, when the project fine-tunes and the stage has written it."""
    if "adapter" not in params["paths"]:
        return None
    folder = path(params, "adapter", root)
    return str(folder) if (folder / "adapter_config.json").is_file() else None


def from_project(
    params: dict[str, Any], root: Path | None = None, adapter: str | None | bool = True, generate: bool = True
) -> Assistant:
    """The project's assistant: ``adapter`` True for the fine-tuned one (when there is one), None for
    the base model alone, or a folder; ``generate`` False for one that only formats prompts."""
    root = root or project_root()
    template = prompt_templates.templates(root)[PROMPT]
    retriever = None
    if params.get("retrieval"):
        from .index import open_index

        retriever = open_index(params, root)
    top_k = int((params.get("retrieval") or {}).get("top_k", 0))
    generator = None
    if generate:
        from .generate import generator as make_generator

        chosen = adapter_folder(params, root) if adapter is True else adapter or None
        generator = make_generator(params, chosen, root)
    return Assistant(template, generator, retriever, top_k)
