"""The agent's costs: a tool round trip through the service, and constrained decoding per token.

    make env && uv run python bench/agent.py [--requests N] [--repeats N] [--out bench/agent-results.json]

Renders an llmops project (``base_model: tiny``, every LLM part and ``agent``), sets it up and runs
its pipeline (``make repro``), then, each server in its own process on 127.0.0.1:

1. **A tool round trip through the service.** The service's agent (the model ``<name>-agent``) in
   upstream mode, every guardrail on, against a scripted upstream (a bare ASGI app, no model) that
   calls the ``plan_details`` tool and, once it reads the result, answers. The same request with
   the word NOTOOL gets the answer at once. The round trip is the difference of the two p50s
   (one tool call: the second generation round trip to the upstream, the call, the screen of its
   output, the bookkeeping), alternating runs; beside it, the same tool called in process (its
   function alone, and ``Tool.call`` with the argument check and the timeout thread). Target: the
   round trip adds <= 3 ms p50 over calling the tool function directly.
2. **Constrained decoding per token.** The tiny model generating 64 tokens greedily in process
   from the same prompt (the tools' system message and a question), free (its end of text held
   back until then) and held to the tool-call document of the project's tools (``chat/tools.py``:
   the grammar's mask at every step), alternating: milliseconds per generated token, and the ratio.

Offline (``HF_HUB_OFFLINE=1``); torch from pip's local wheels when the machine has them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chat import SERVERS, measured  # noqa: E402
from llm_pipeline import LlmBench  # noqa: E402

TARGET_MS = 3.0

UPSTREAM = """
import json, sys, time
CALL = json.dumps({"tool": "plan_details", "arguments": {"plan": "Day Pass"}})
ANSWER = json.dumps({"answer": "The Day Pass costs 6 euros."})

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body or b"{}")
    said = [str(m.get("content")) for m in request.get("messages", [])]
    done = bool(said) and " returned: " in said[-1] or any("NOTOOL" in s for s in said)
    answer = {"id": "x", "created": int(time.time()), "model": request.get("model", "m"), "object": "chat.completion",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER if done else CALL}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}}
    payload = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})

if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

MEASURE = (
    SERVERS
    + """
registry = import_module(f"{pkg}.tools.registry")


def p50_ms(function, times=300):
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


params = config.load_params()
agent = params["tracking"]["model_name"] + "-agent"
results = {}

# 1. in process: the tool's function alone, and Tool.call (argument check, timeout thread)
tool = registry.registered()["plan_details"]
tool.function(plan="Day Pass")
results["direct"] = {
    "function_p50_ms": round(p50_ms(lambda: tool.function(plan="Day Pass")), 4),
    "tool_call_p50_ms": round(p50_ms(lambda: tool.call({"plan": "Day Pass"})), 4),
}

# 2. through the service's agent, upstream mode, every rail on: with one tool call and without
up_port, svc_port = free_port(), free_port()
upstream = start([sys.executable, "upstream.py", str(up_port)], f"http://127.0.0.1:{up_port}/")
raw = yaml.safe_load(Path("params.yaml").read_text())
original = Path("params.yaml").read_text()
raw["serving"].update(backend="upstream", upstream_url=f"http://127.0.0.1:{up_port}/v1", upstream_model="m")
Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
service = start([sys.executable, "-m", pkg, "serve", "--port", str(svc_port)], f"http://127.0.0.1:{svc_port}/health")
question = "What does the Day Pass cost?"
ask = lambda text: json.dumps({"model": agent, "messages": [{"role": "user", "content": text}]}).encode()
try:
    probe = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{svc_port}{ROUTE}", ask(question), {"Content-Type": "application/json"})).read())
    assert [s["tool"] for s in probe["agent"]["steps"]] == ["plan_details"], probe
    with_tool, without = [], []
    for _ in range(repeats):
        with_tool.append(loadtest.run_load(f"http://127.0.0.1:{svc_port}", [ask(question)], requests, 1, warmup=5, route=ROUTE))
        without.append(loadtest.run_load(f"http://127.0.0.1:{svc_port}", [ask("NOTOOL " + question)], requests, 1, warmup=5, route=ROUTE))
finally:
    stop(service)
    stop(upstream)
    Path("params.yaml").write_text(original)
p50 = lambda runs: statistics.median(r["latency_ms"]["p50"] for r in runs)
per_run = [round(w["latency_ms"]["p50"] - o["latency_ms"]["p50"], 3) for w, o in zip(with_tool, without)]
results["service"] = {
    "with_tool_p50_ms": p50(with_tool), "without_p50_ms": p50(without),
    "round_trip_p50_ms": round(p50(with_tool) - p50(without), 3), "round_trip_per_run_ms": per_run,
    "errors": sum(r["errors"] for r in with_tool + without),
}

# 3. constrained decoding: the tiny model, 64 tokens each way (free: end of text suppressed until
#    then), greedy, the same prompt; the difference is the grammar's mask at every step
import torch
from transformers import LogitsProcessorList
backends = import_module(f"{pkg}.chat.backends")
generation = import_module(f"{pkg}.llm.generate")
structured = import_module(f"{pkg}.llm.structured")
offered = import_module(f"{pkg}.chat.tools").offered([t.spec() for t in registry.registered().values()], "required")
generate = backends.load(params, Path(".")).generate
model, tokenizer = generate.model, generate.tokenizer
messages = [offered.system_message(), {"role": "user", "content": question}]
batch = tokenizer([generation.as_text(tokenizer, messages)], return_tensors="pt", add_special_tokens=False)
schema = offered.schema()


def decode(constrained):
    options = {"logits_processor": LogitsProcessorList([structured.processor(tokenizer, schema)])} if constrained else {"min_new_tokens": 64}
    started = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=64, do_sample=False, pad_token_id=tokenizer.pad_token_id, **options)
    return (time.perf_counter() - started) * 1000, int(out.shape[1] - batch["input_ids"].shape[1])


samples = {"free": [], "constrained": []}
for _ in range(repeats + 1):
    for kind in ("free", "constrained"):
        samples[kind].append(decode(kind == "constrained"))
decoding = {"prompt_tokens": int(batch["input_ids"].shape[1])}
for kind, runs in samples.items():
    runs = runs[1:]  # the first of each: warm-up
    decoding[f"{kind}_ms_per_token"] = round(statistics.median(ms / max(tokens, 1) for ms, tokens in runs), 3)
    decoding[f"{kind}_tokens"] = [tokens for _, tokens in runs]
decoding["ratio"] = round(decoding["constrained_ms_per_token"] / decoding["free_ms_per_token"], 2)
results["decoding"] = decoding
print(json.dumps(results))
"""
)


class AgentBench(LlmBench):
    answers = (*LlmBench.answers, 'llm_parts=["retrieval", "finetuning", "guardrails", "agent"]')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per run, with and without a tool")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    what = "the tool in process, a tool round trip through the service, decoding"
    results, info = measured(AgentBench, UPSTREAM, MEASURE, args.requests, args.repeats, what)
    direct, service, decoding = results["direct"], results["service"], results["decoding"]
    added = service["round_trip_p50_ms"] - direct["function_p50_ms"]
    met = all(run - direct["function_p50_ms"] <= TARGET_MS for run in service["round_trip_per_run_ms"])
    lines = [
        f"the tool in process: its function {direct['function_p50_ms']} ms, Tool.call {direct['tool_call_p50_ms']} ms (p50)",
        f"through the service's agent (upstream mode, every rail on, {args.requests} requests x {args.repeats}): "
        f"p50 {service['with_tool_p50_ms']:.2f} ms with one tool call, {service['without_p50_ms']:.2f} ms without: "
        f"a round trip of {service['round_trip_p50_ms']:.2f} ms, {added:.2f} ms over the function; per run "
        f"{', '.join(f'{r:.2f}' for r in service['round_trip_per_run_ms'])} ms "
        f"(target: <= {TARGET_MS} ms over the function in every run: {'met' if met else 'not met'}); "
        f"{service['errors']} errors",
        f"decoding, tiny, {decoding['prompt_tokens']}-token prompt, greedy: {decoding['free_ms_per_token']} ms "
        f"per token free ({decoding['free_tokens']} tokens), {decoding['constrained_ms_per_token']} ms held to the "
        f"tool-call document ({decoding['constrained_tokens']} tokens): {decoding['ratio']}x",
        f"machine: {info}",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text(
            json.dumps({"results": results, "machine": info}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
