"""The service's own agent: the project's tools run inside the chat service, in a bounded loop.

A chat request to the model ``<tracking.model_name>-agent`` (listed by ``/v1/models``) is answered
by this loop: the model is offered every registered tool (``registry.py``, and those of the MCP
servers in ``agent.mcp_servers``: ``remote.py``), described by its system prompt
(``prompts/agent.txt``, ``{{tools}}`` filled; its registered version is recorded) and writes, by
constrained decoding (``chat/tools.py``), either a call or its answer. A call runs here: its
arguments checked against the tool's schema, bounded by the tool's timeout, a failure retried
(``agent.retries``) and then shown to the model as an error it can work around. What a tool
returns passes the indirect-injection screen of the guardrails (``retrieved`` rail) before the
model reads it. The loop ends with the model's answer, or at the first bound of ``agent`` in
``params.yaml`` it reaches: ``max_steps`` tool calls, ``max_seconds`` of wall time,
``max_tokens`` generated, ``max_cost`` spent (``business/prices.yaml``). The response says which
(``agent.finish``: ``answer``, ``max_steps``, ``max_seconds``, ``max_tokens``, ``max_cost``,
``context`` when the conversation outgrew the model's context, ``length`` when one step reached
the answer's token limit, ``approval``), its
``finish_reason`` is ``stop``, or ``length`` for a bound.

A tool that needs approval (``approval``: tools with side effects) is never run unasked: the
request ends with ``agent.pending`` (an action id, the tool and its arguments) and the state of
the loop is kept for ``agent.approval_minutes`` as a file in ``paths.actions`` (a restarted
service, or any replica sharing the folder, resumes it; the first to take it has it);
``POST /v1/actions`` with
``{"id": ..., "decision": "approve" | "reject"}`` resumes it and answers as the request would
have. Every step (tool, arguments redacted by the privacy policy, outcome, seconds) is in the
response (``agent.steps``), the request log and the trace; the tool versions offered are in the log.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Run:
    """One request's loop: the conversation so far and what it has spent."""

    messages: list[dict[str, str]]
    asked: Any  # the request's generation settings (llm/generate.Asked)
    request: Any = None  # the chat request (chat/protocol.ChatRequest): a resumed run answers it
    question: str = ""  # as the input rails let it through
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0  # spent before a pause, kept across it
    tokens: int = 0
    prompt_tokens: int = 0
    cost: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(
        default_factory=list
    )  # what the model called, as it wrote it
    pending: dict[str, Any] | None = None  # the call waiting for a person

    def elapsed(self) -> float:
        return self.seconds + time.monotonic() - self.started


class Pending:
    """Loops paused for approval, by action id, for ``minutes``: each kept as a JSON file in
    ``folder`` (``paths.actions``), so that the service after a restart, or any of its replicas
    sharing the folder, resumes it. The first to take an action has it: the file is claimed by a
    rename, which one process wins."""

    ID = re.compile(r"^act_[0-9a-f]{20}$")

    def __init__(self, minutes: float, folder: Path):
        self.minutes, self.folder = minutes, folder

    def keep(self, run: Run) -> str:
        ident = f"act_{uuid.uuid4().hex[:20]}"
        run.seconds, run.pending = run.elapsed(), {**(run.pending or {}), "id": ident}
        self.folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in self.folder.glob("act_*.json"):  # what no one decided in time
            with contextlib.suppress(OSError):
                if old.stat().st_mtime + self.minutes * 60 < now:
                    old.unlink()
        record = {"expires": now + self.minutes * 60, "run": _dump(run)}
        written = self.folder / f".{ident}.tmp"
        written.write_text(json.dumps(record), encoding="utf-8")
        written.replace(self.folder / f"{ident}.json")
        return ident

    def take(self, ident: str) -> Run | None:
        if not self.ID.match(ident):
            return None
        claimed = self.folder / f".{ident}.{uuid.uuid4().hex[:8]}.taken"
        try:
            (self.folder / f"{ident}.json").rename(claimed)
        except FileNotFoundError:
            return None  # decided already (here or by another replica), expired, or never made
        record = json.loads(claimed.read_text(encoding="utf-8"))
        claimed.unlink()
        if record["expires"] < time.time():
            return None
        run = _load(record["run"])
        run.started = time.monotonic()
        return run


def _asked(asked) -> dict[str, Any]:
    """A request's generation settings as JSON (what each step sets itself, left out)."""
    import dataclasses

    return {
        f.name: getattr(asked, f.name)
        for f in dataclasses.fields(asked)
        if f.name not in ("tools", "response_format")
    }


def _dump(run: Run) -> dict[str, Any]:
    request = run.request
    fields = (
        "messages",
        "question",
        "seconds",
        "tokens",
        "prompt_tokens",
        "cost",
        "steps",
        "calls",
        "pending",
    )
    return {
        **{name: getattr(run, name) for name in fields},
        "asked": _asked(run.asked),
        "request": {
            "messages": request.messages,
            "asked": _asked(request.asked),
            "stream": request.stream,
            "include_usage": request.include_usage,
            "model": request.model,
        },
    }


def _load(data: dict[str, Any]) -> Run:
    from ..chat.protocol import ChatRequest
    from ..llm.generate import Asked

    def asked(fields: dict[str, Any]) -> Asked:
        return Asked(**{**fields, "stop": tuple(fields.get("stop") or ())})

    kept = data["request"]
    request = ChatRequest(
        kept["messages"], asked(kept["asked"]), kept["stream"], kept["include_usage"], model=kept["model"]
    )
    run = Run(data["messages"], asked(data["asked"]), request, data["question"])
    for name in ("seconds", "tokens", "prompt_tokens", "cost", "steps", "pending"):
        setattr(run, name, data[name])
    run.calls = [(name, arguments) for name, arguments in data["calls"]]
    return run


@dataclass(frozen=True)
class Kit:
    """What the agent's model is given: the tools (the project's, ``registry.py``, and the MCP
    servers' of ``agent.mcp_servers``, ``remote.py``), them as offered to the model, and the
    system prompt (``prompts/agent.txt``, versioned by the prompts stage) that describes them."""

    tools: dict[str, Any]
    offered: Any  # chat/tools.Offered
    versions: dict[str, str]
    prompt: str | None  # None: the built-in instructions (a project without prompts/agent.txt)
    prompt_version: str | None

    @classmethod
    def of(cls, params: dict[str, Any], root) -> Kit:
        from ..chat import tools as tool_calling
        from ..llm import prompts
        from . import registry, remote

        tools = {**registry.registered(), **remote.tools(params["agent"].get("mcp_servers"), root)}
        return cls(
            tools=tools,
            offered=tool_calling.offered([t.spec() for t in tools.values()], "auto"),
            versions=registry.versions(tools),
            prompt=prompts.templates(root).get(prompts.AGENT),
            prompt_version=prompts.versions(params, root).get(prompts.AGENT, {}).get("uri"),
        )

    def system_message(self) -> dict[str, str]:
        return self.offered.system_message(self.prompt)


class Agent:
    """The loop over ``tools`` for a chat service (``chat/app.py``): ``service`` generates, counts
    tokens and cost, and screens with its guardrails."""

    def __init__(self, service, params: dict[str, Any], approvals: str = "pause", root=None):
        """``approvals``: ``pause`` (the service: a person decides) or ``simulate`` (the agent
        stage: the call counts as made and approved, and is not run). The tools: the project's
        (``registry.py``) and those of the MCP servers in ``agent.mcp_servers`` (``remote.py``)."""
        from ..config import path, project_root

        root = root or project_root()
        self.service, self.settings = service, params["agent"]
        self.kit = Kit.of(params, root)
        self.tools, self.offered, self.versions = self.kit.tools, self.kit.offered, self.kit.versions
        self.prompt, self.prompt_version = self.kit.prompt, self.kit.prompt_version
        self.pending = Pending(float(self.settings["approval_minutes"]), path(params, "actions", root))
        self.name = f"{service.name}-agent"
        self.approvals = approvals

    # ------------------------------------------------------------------ the loop
    def start(self, messages: list[dict[str, str]], request, question: str) -> Run:
        return Run([self.kit.system_message(), *messages], request.asked, request, question)

    def resume(self, ident: str, decision: str) -> Run:
        """The paused run of action ``ident`` with the person's decision applied: the call run
        (``approve``) or refused (``reject``), its outcome added for the model to read."""
        from ..serving.base import Refused

        if decision not in ("approve", "reject"):
            raise Refused("invalid_request", 400, "decision: expected approve or reject")
        run = self.pending.take(ident)
        if run is None:
            raise Refused("not_found", 404, f"no action {ident!r} is waiting (approved, rejected or expired)")
        call, run.pending = run.pending, None
        waited = round(time.time() - call["asked_at"], 3)
        if decision == "approve":
            self._run_tool(run, call["tool"], call["arguments"], {"approved": True, "waited_s": waited})
        else:
            run.steps.append(
                {"tool": call["tool"], "arguments": call["shown"], "outcome": "rejected", "waited_s": waited}
            )
            self._add(run, call["tool"], call["arguments"], "a person rejected this call: do not retry it")
        return run

    def advance(self, run: Run):
        """Generate and call until an answer or a bound, yielding each step as it is done; returns
        ``(text, finish)`` where ``finish`` is the ``agent.finish`` value (``approval``: paused,
        see ``run.pending``)."""
        import dataclasses

        from ..chat import tools as tool_calling

        bound = self.settings
        while True:
            for name, spent in (
                ("max_seconds", run.elapsed()),
                ("max_tokens", run.tokens),
                ("max_cost", run.cost),
            ):
                if spent >= float(bound[name]):
                    return self._cut(name), name
            if len(run.steps) >= int(bound["max_steps"]):
                return self._cut("max_steps"), "max_steps"
            left = max(1, int(bound["max_tokens"]) - run.tokens)
            context = self.service.context
            if context and self._prompt(run) + min(int(run.asked.max_new_tokens or left), left) > int(
                context
            ):
                return self._cut("context"), "context"
            asked = dataclasses.replace(
                run.asked,
                response_format=self.offered.response_format(),
                tools=self.offered,
                max_new_tokens=min(int(run.asked.max_new_tokens or left), left),
            )
            usage: dict[str, Any] = {}
            generate = self.service.backend.generate
            if hasattr(generate, "complete"):  # an upstream server: one response
                text = generate.complete(run.messages, asked, usage)
            else:
                text = "".join(generate.stream(run.messages, asked, usage))
            tokens = int(usage.get("tokens") or self.service.backend.count_tokens(text))
            prompt = int(usage.get("prompt_tokens") or self._prompt(run))
            run.tokens, run.prompt_tokens = run.tokens + tokens, run.prompt_tokens + prompt
            run.cost += self.service.cost(prompt, tokens)
            answer, call = tool_calling.read(text.strip())
            if call is None:
                if usage.get("finish") == "length":  # the step's own limit, or the loop's budget
                    spent = run.tokens >= int(bound["max_tokens"])
                    return self._cut("max_tokens" if spent else "length"), "max_tokens" if spent else "length"
                return answer or "", "answer"
            name = call["function"]["name"]
            arguments = json.loads(call["function"]["arguments"])
            run.calls.append((name, arguments))
            item = self.tools.get(name)
            if item is not None and item.approval:  # arguments that do not fit are never put to a person
                from .registry import ToolError

                try:
                    item.arguments(arguments)
                except ToolError as error:
                    run.steps.append(
                        {"tool": name, "arguments": self._shown(arguments), "outcome": error.kind}
                    )
                    self._add(run, name, arguments, f"error: {error}")
                    yield run.steps[-1]
                    continue
            if item is not None and item.approval and self.approvals == "simulate":
                run.steps.append({"tool": name, "arguments": self._shown(arguments), "outcome": "approval"})
                self._add(run, name, arguments, "a person approved this call (an evaluation: it was not run)")
                yield run.steps[-1]
                continue
            if item is not None and item.approval:
                run.pending = {
                    "tool": name,
                    "arguments": arguments,
                    "shown": self._shown(arguments),
                    "asked_at": time.time(),
                }
                self.pending.keep(run)
                return f"{name} needs a person's approval: action {run.pending['id']}", "approval"
            self._run_tool(run, name, arguments, {})
            yield run.steps[-1]

    def _prompt(self, run: Run) -> int:
        from ..chat.app import PER_MESSAGE

        return sum(self.service.backend.count_tokens(m["content"]) + PER_MESSAGE for m in run.messages)

    def finish(self, run: Run, each=None) -> tuple[str, str]:
        """``advance`` to its end, ``each(step)`` for every step: ``(text, finish)``."""
        steps = self.advance(run)
        while True:
            try:
                step = next(steps)
            except StopIteration as done:
                return done.value
            if each is not None:
                each(step)

    def _run_tool(self, run: Run, name: str, arguments: dict[str, Any], extra: dict[str, Any]) -> None:
        from .registry import ToolError

        item, started, tries = self.tools.get(name), time.perf_counter(), 0
        outcome, result = "ok", None
        while True:
            tries += 1
            try:
                if item is None:
                    raise ToolError("unknown", f"no tool named {name!r}")
                value = item.call(arguments)
                result = value if isinstance(value, str) else json.dumps(value, default=str)
                break
            except ToolError as error:
                outcome, result = error.kind, f"error: {error}"
                if error.kind in ("arguments", "unknown") or tries > int(self.settings["retries"]):
                    break
        result, screened = self._screen(result)
        run.steps.append(
            {
                "tool": name,
                "arguments": self._shown(arguments),
                "outcome": outcome,
                "tries": tries,
                "seconds": round(time.perf_counter() - started, 4),
                **({"screened": screened} if screened else {}),
                **extra,
            }
        )
        self._add(run, name, arguments, result)

    def _add(self, run: Run, name: str, arguments: dict[str, Any], result: str) -> None:
        """The call as the model wrote it, then its result (as a trace is trained on: traces.py)."""
        from ..chat import tools as tool_calling

        written = tool_calling.call_text({"function": {"name": name, "arguments": arguments}})
        run.messages += [
            {"role": "assistant", "content": written},
            {"role": "tool", "content": tool_calling.result_text(name, result)},
        ]

    def _screen(self, text: str) -> tuple[str, str | None]:
        """A tool's output as the model may read it: withheld when it carries instructions."""
        rails = self.service.rails
        if rails is None:
            return text, None
        found = rails.check_retrieved(text, "tool")
        if found.blocked is not None:
            return "[withheld: the tool's output carried instructions]", found.blocked
        return found.text, None

    def _shown(self, arguments: dict[str, Any]) -> str:
        text = json.dumps(arguments)
        rails = self.service.rails
        return rails.scrub(text) if rails is not None else text

    @staticmethod
    def _cut(bound: str) -> str:
        if bound == "context":
            return "The assistant stopped before an answer: the conversation outgrew the model's context."
        if bound == "length":
            return "The assistant stopped before an answer: a step reached the answer's token limit (max_tokens)."
        return f"The assistant stopped before an answer: it reached agent.{bound} in params.yaml."

    def report(self, run: Run, finish: str) -> dict[str, Any]:
        """What the response and the log carry of the loop."""
        shown = {k: v for k, v in (run.pending or {}).items() if k in ("id", "tool", "shown")}
        return {
            "finish": finish,
            "steps": run.steps,
            "tools": self.versions,
            **({"prompt": self.prompt_version} if self.prompt_version else {}),
            **({"pending": shown} if finish == "approval" else {}),
        }
