"""The llmops chat service: what the service itself costs, and the tiny model's speed through it.

    make env && uv run python bench/chat.py [--requests N] [--repeats N] [--out bench/chat-results.json]

Renders an llmops project (``base_model: tiny``, every part), sets it up (``make setup``), runs its
pipeline (``make repro``), then, each server in its own process on 127.0.0.1:

1. **Service overhead.** An upstream OpenAI-compatible server that answers at once with a fixed
   answer (a bare ASGI app: no model), called directly and through the service in upstream mode
   with every guardrail on (retrieval, prompt, input and output rails, token counting, metrics,
   the request log): the same bodies, one connection, alternating runs. The added latency is the
   difference of the p50s, per run and their median (target: <= 2 ms in every run).
2. **Guardrails alone**: the input and output rails on a 1 KB question and a 1 KB answer, in process,
   the input rails with the learned detector and without it, interleaved; and the detector's training.
3. **The tiny model through the service** (the project's files: base model, adapter, index):
   streamed requests at concurrency 1 and 8: time to first token (p50, p95), generated tokens per
   second (median per request), requests per second.

Offline (``HF_HUB_OFFLINE=1``); torch from pip's local wheels when the machine has them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from llm_pipeline import LlmBench  # noqa: E402
from run import machine, package_name  # noqa: E402
from torch_index import local_index  # noqa: E402

TARGET_MS = 2.0

UPSTREAM = """
import json, sys, time
ANSWER = "Scan the QR code on the handlebar with the app, then pull the bike out of the dock."

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
    head = {"id": "x", "created": int(time.time()), "model": request.get("model", "m")}
    if request.get("stream"):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for word in ANSWER.split(" "):
            chunk = {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
            await send({"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\\n\\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\\n\\n"})
        return
    answer = {**head, "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 50, "completion_tokens": 17, "total_tokens": 67}}
    payload = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})

if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

# The start of every measure script (run by the project's own Python): its arguments, the
# project's package, and its servers, each in its own process on a free port of 127.0.0.1.
SERVERS = """
import json, os, signal, socket, statistics, subprocess, sys, time, urllib.request
from importlib import import_module
from pathlib import Path
import yaml

pkg, requests, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
loadtest = import_module(f"{pkg}.serving.loadtest")
config = import_module(f"{pkg}.config")
ROUTE = "/v1/chat/completions"
env = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, url, extra=None):
    process = subprocess.Popen(cmd, env={**env, **(extra or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(600):
        try:
            urllib.request.urlopen(url, timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no answer from {url}")


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(20)
"""

MEASURE = (
    SERVERS
    + """
read_stream = import_module(f"{pkg}.chat.qa").read_stream
policy = import_module(f"{pkg}.guardrails.policy")
Rails = import_module(f"{pkg}.guardrails.rails").Rails
token_counter = import_module(f"{pkg}.llm.base").token_counter


params = config.load_params()
name = params["tracking"]["model_name"]
question = "How do I unlock a bike with the app?"
body = json.dumps({"model": name, "messages": [{"role": "user", "content": question}], "max_tokens": 24}).encode()
results = {}

# 1. overhead: upstream directly vs the service in upstream mode (every rail on)
up_port, svc_port = free_port(), free_port()
upstream = start([sys.executable, "upstream.py", str(up_port)], f"http://127.0.0.1:{up_port}/", None)
raw = yaml.safe_load(Path("params.yaml").read_text())
raw["serving"].update(backend="upstream", upstream_url=f"http://127.0.0.1:{up_port}/v1", upstream_model=name)
Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
service = start([sys.executable, "-m", pkg, "serve", "--port", str(svc_port)], f"http://127.0.0.1:{svc_port}/health")
try:
    direct, through = [], []
    for _ in range(repeats):
        direct.append(loadtest.run_load(f"http://127.0.0.1:{up_port}", [body], requests, 1, warmup=5, route=ROUTE))
        through.append(loadtest.run_load(f"http://127.0.0.1:{svc_port}", [body], requests, 1, warmup=5, route=ROUTE))
finally:
    stop(service)
    stop(upstream)
    raw["serving"].update(backend="application", upstream_url="", upstream_model="")
    Path("params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
p50 = lambda runs: statistics.median(r["latency_ms"]["p50"] for r in runs)
results["overhead"] = {
    "direct_p50_ms": p50(direct), "service_p50_ms": p50(through), "added_p50_ms": round(p50(through) - p50(direct), 3),
    "added_p50_per_run_ms": [round(t["latency_ms"]["p50"] - d["latency_ms"]["p50"], 3) for d, t in zip(direct, through)],
    "direct_runs": [r["latency_ms"] for r in direct], "service_runs": [r["latency_ms"] for r in through],
    "errors": sum(r["errors"] for r in direct + through),
}

# 2. the rails alone on 1 KB
settings = policy.load(Path("."))
rails = Rails(settings, token_counter(params))  # the policy as it is: the learned detector on
patterns = rails.patterns_only()  # the same policy without the detector, measured beside it
kilobyte = ("How do I unlock a bike with the app when the station screen is dark? " * 15)[:1024]
answer = ("Scan the code on the handlebar with the app and pull the bike out of the dock. " * 13)[:1024]
context = answer
started = time.perf_counter()
rails.check_input(kilobyte)  # trains the detector on the project's sets
results["detector_training_s"] = round(time.perf_counter() - started, 3)
rails.check_output(answer, context); patterns.check_input(kilobyte)
timing = {"input_ms": [], "output_ms": [], "input_without_detector_ms": []}
for _ in range(100):
    t = time.perf_counter(); rails.check_input(kilobyte); timing["input_ms"].append((time.perf_counter() - t) * 1000)
    t = time.perf_counter(); patterns.check_input(kilobyte); timing["input_without_detector_ms"].append((time.perf_counter() - t) * 1000)
    t = time.perf_counter(); rails.check_output(answer, context); timing["output_ms"].append((time.perf_counter() - t) * 1000)
results["rails_1kb"] = {k: round(statistics.median(v), 3) for k, v in timing.items()}

# 3. the tiny model through the service, streamed, at concurrency 1 and 8
port = free_port()
service = start([sys.executable, "-m", pkg, "serve", "--port", str(port)], f"http://127.0.0.1:{port}/health")
streamed = json.dumps({"model": name, "messages": [{"role": "user", "content": question}], "max_tokens": 48,
                       "stream": True, "stream_options": {"include_usage": True}}).encode()
try:
    for concurrency in (1, 8):
        run = loadtest.run_load(f"http://127.0.0.1:{port}", [streamed], max(requests // 4, 16), concurrency, warmup=2, route=ROUTE, read=read_stream)
        ttft, rates = run["measures"].get("ttft_ms", []), run["measures"].get("tokens_per_s", [])
        results[f"tiny_c{concurrency}"] = {
            "requests": run["requests"], "requests_per_s": run["requests_per_s"], "errors": run["errors"],
            "ttft_p50_ms": round(loadtest.percentile(ttft, 50), 2), "ttft_p95_ms": round(loadtest.percentile(ttft, 95), 2),
            "tokens_per_s_median": round(statistics.median(rates), 1) if rates else None,
        }
finally:
    stop(service)
print(json.dumps(results))
"""
)


def measured(bench_class, upstream: str, measure: str, requests: int, repeats: int, what: str):
    """A project rendered and set up by ``bench_class`` (an ``LlmBench``), its pipeline run, then
    ``measure`` run by the project's Python beside ``upstream`` (written as ``upstream.py``):
    ``(results, machine)``, the results being the last line it prints, as JSON."""
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as folder:
        work = Path(folder)
        bench = bench_class(work, 1)
        bench.env.update(local_index(work))
        bench.env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        project = bench.project()
        pkg = package_name(project)
        bench.progress("make repro (the pipeline: base model, index, adapter)")
        bench.timed(["make", "repro"], project)
        (project / "upstream.py").write_text(upstream)
        (project / "measure.py").write_text(measure)
        bench.progress(f"measure: {what}")
        python = str(project / ".venv" / "bin" / "python")
        _, done = bench.run([python, "measure.py", pkg, str(requests), str(repeats)], project)
        return json.loads(done.stdout.strip().splitlines()[-1]), machine(project)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per overhead run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating overhead runs of each")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results, info = measured(
        LlmBench,
        UPSTREAM,
        MEASURE,
        args.requests,
        args.repeats,
        "overhead, rails, the tiny model at concurrency 1 and 8",
    )
    overhead = results["overhead"]
    runs = overhead["added_p50_per_run_ms"]
    within = sum(added <= TARGET_MS for added in runs)
    verdict = "met in every run" if within == len(runs) else f"met in {within} of {len(runs)} runs"
    lines = [
        f"service overhead (upstream mode, every rail on, concurrency 1, {args.requests} requests x {args.repeats}): "
        f"p50 {overhead['direct_p50_ms']:.2f} ms direct, {overhead['service_p50_ms']:.2f} ms through the service: "
        f"+{overhead['added_p50_ms']:.2f} ms median; per run {', '.join(f'+{a:.2f}' for a in runs)} ms "
        f"(target <= {TARGET_MS} ms in every run: {verdict})",
        f"guardrails on 1 KB: input rails {results['rails_1kb']['input_ms']} ms "
        f"({results['rails_1kb']['input_without_detector_ms']} ms without the learned detector, "
        f"trained in {results['detector_training_s']} s), output rails {results['rails_1kb']['output_ms']} ms (median)",
    ]
    for concurrency in (1, 8):
        r = results[f"tiny_c{concurrency}"]
        lines.append(
            f"tiny through the service, concurrency {concurrency}: TTFT p50 {r['ttft_p50_ms']} ms, p95 {r['ttft_p95_ms']} ms, "
            f"{r['tokens_per_s_median']} tokens/s per request (median), {r['requests_per_s']} requests/s, {r['errors']} errors"
        )
    lines.append(f"machine: {info}")
    print("\n".join(lines))
    if args.out:
        args.out.write_text(
            json.dumps({"results": results, "machine": info}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
