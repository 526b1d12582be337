"""Tool-use traces: conversations in which the agent used its tools well, to fine-tune it on.

``paths.traces`` (the bundled ``data/sample/traces.jsonl``) holds one conversation per line in
the format OpenAI's fine-tuning takes for tool use, which is also what a chat client or the
request log's conversations export::

    {"messages": [
      {"role": "user", "content": "What does the Annual plan cost?"},
      {"role": "assistant", "tool_calls": [{"type": "function",
        "function": {"name": "plan_details", "arguments": "{\\"plan\\": \\"Annual\\"}"}}]},
      {"role": "tool", "content": "{\\"plan\\": \\"Annual\\", \\"price_eur\\": \\"120\\"}"},
      {"role": "assistant", "content": "The Annual plan costs 120 euros."}]}

The contract (``check``), in the ``validate`` stage and again where the traces are read: every
line a JSON object with ``messages``; a user turn first; each assistant turn either an answer
(``content``) or one call (``tool_calls``, one per turn, as the agent makes them) of a tool the
project has, with arguments that follow its schema, followed by the tool's result; an answer
last; and no trace that starts with a goal of the agent's scenarios (``paths.scenarios``: those
evaluate the agent, and a model trained on them would be graded on what it memorised). A system
message in a trace is left out: the agent's own prompt (``prompts/agent.txt``) takes its place.

``examples`` turns a trace into what the agent's model reads and writes at each assistant turn:
the conversation so far exactly as the loop shows it (``agent.py``: the prompt with the tools,
each call as the document the model wrote, each result as ``<tool> returned: ...``) and the
document it should write, a call or ``{"answer": ...}``, as constrained decoding writes it. The
``finetune`` stage trains the same LoRA adapter on these beside the pairs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _arguments(function: dict[str, Any]) -> Any:
    raw = function.get("arguments") or "{}"
    return json.loads(raw) if isinstance(raw, str) else raw


def check(file: Path, tools: dict[str, Any], goals: set[str] = frozenset()) -> tuple[list, list[str]]:
    """The traces of ``file`` and every way they break the contract, a line each naming the line."""
    from ..corpus.collect import jsonl_lines
    from .registry import ToolError

    traces, problems = [], []
    for where, item in jsonl_lines(file):
        if isinstance(item, ValueError):
            problems.append(f"{where}: not JSON ({item})")
            continue
        messages = item.get("messages") if isinstance(item, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            problems.append(f'{where}: expected {{"messages": [{{"role": ..., ...}}, ...]}}')
            continue
        turns = [m for m in messages if m.get("role") != "system"]
        found = _problems(turns, tools, ToolError)
        if turns and turns[0].get("role") == "user":
            goal = str(turns[0].get("content", "")).strip().lower()
            if goal in goals:
                found.append("its first question is a goal of the agent's scenarios (kept for evaluation)")
        problems += [f"{where}: {problem}" for problem in found]
        if not found:
            traces.append(turns)
    return traces, problems


def _problems(turns: list[dict[str, Any]], tools: dict[str, Any], ToolError) -> list[str]:  # noqa: N803
    if not turns or turns[0].get("role") != "user" or not isinstance(turns[0].get("content"), str):
        return ["the first message (after any system message) must be the user's, with text"]
    last = turns[-1]
    if last.get("role") != "assistant" or last.get("tool_calls") or not isinstance(last.get("content"), str):
        return ["the last message must be the assistant's answer (content, no tool_calls)"]
    found, waiting = [], None
    for index, message in enumerate(turns):
        role, at = message.get("role"), f"messages[{index}]"
        if waiting is not None and role != "tool":
            found.append(f"{at}: the result of {waiting} must follow its call (role tool)")
        if role == "tool":
            if waiting is None:
                found.append(f"{at}: a tool result without a call before it")
            waiting = None
            continue
        if role not in ("user", "assistant"):
            found.append(f"{at}: role {role!r}: expected user, assistant or tool")
            continue
        calls = message.get("tool_calls") or []
        if role == "user" or not calls:
            if not isinstance(message.get("content"), str):
                found.append(f"{at}: expected text content")
            continue
        if len(calls) != 1:
            found.append(f"{at}: {len(calls)} calls in one turn; the agent makes one at a time")
            continue
        function = calls[0].get("function") if isinstance(calls[0], dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if name not in tools:
            found.append(f"{at}: no tool named {name!r} (the tools: {', '.join(sorted(tools))})")
            continue
        try:
            tools[name].arguments(_arguments(function))
        except (ToolError, ValueError) as error:
            found.append(f"{at}: {error}")
        waiting = name
    return found


def examples(turns: list[dict[str, Any]], system: dict[str, str]) -> list[tuple[list[dict[str, str]], str]]:
    """``(conversation so far, what the model should write)`` for each assistant turn of a trace."""
    from ..chat import tools as tool_calling

    seen: list[dict[str, str]] = [system]
    made, called = [], None
    for message in turns:
        if message["role"] == "user":
            seen.append({"role": "user", "content": message["content"]})
        elif message["role"] == "tool":
            content = message.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            seen.append({"role": "tool", "content": tool_calling.result_text(called, text)})
        elif message.get("tool_calls"):
            function = message["tool_calls"][0]["function"]
            called = function["name"]
            written = tool_calling.call_text(
                {"function": {"name": called, "arguments": _arguments(function)}}
            )
            made.append((list(seen), written))
            seen.append({"role": "assistant", "content": written})
        else:
            written = tool_calling.answer_text(message["content"])
            made.append((list(seen), written))
            seen.append({"role": "assistant", "content": message["content"]})
    return made


def load(params: dict[str, Any], root: Path) -> list[tuple[list[dict[str, str]], str]]:
    """Every example of the project's traces (none when it has no ``paths.traces`` file), the
    contract checked first: ``DataValidationError`` with every problem."""
    from ..config import path
    from ..errors import DataValidationError
    from .agent import Kit

    if "traces" not in params["paths"] or not path(params, "traces", root).is_file():
        return []
    kit = Kit.of(params, root)
    traces, problems = check(path(params, "traces", root), kit.tools, scenario_goals(params, root))
    if problems:
        raise DataValidationError("the tool-use traces break their contract:\n  - " + "\n  - ".join(problems))
    return [example for turns in traces for example in examples(turns, kit.system_message())]


def scenario_goals(params: dict[str, Any], root: Path) -> set[str]:
    from ..config import path

    file = path(params, "scenarios", root)
    if not file.is_file():
        return set()
    return {
        str(json.loads(line).get("goal", "")).strip().lower()
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
