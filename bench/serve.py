"""Serving benchmark: the generated project's service against a bare ASGI app and `mlflow models serve`.

    make env && uv run python bench/serve.py [--requests N] [--repeats N] [--out FILE]

Renders the default project into a temporary folder, sets it up (`uv sync`) and runs its pipeline
(`dvc repro`: the model is trained and registered in MLflow as `challenger`), then starts, on
127.0.0.1, (a) the project's service, `python -m <pkg> serve`, (b) the floor: a bare ASGI app on the
same uvicorn doing the same work (bench/bare_app.py: orjson, the compiled preprocessing, one
`predict_proba`), and (c) MLflow's scoring server, `mlflow models serve -m models:/<name>@challenger
--env-manager local`, each one process. This
process is the client: threads on keep-alive connections, one JSON row per request (held-out rows
in turn), a warm-up first, then for each repeat and each concurrency both servers one after the
other. Prints a markdown table (medians over the repeats) and writes every sample as JSON.
Standard library only; the project brings its own environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from run import environment as pipeline_environment  # bench/run.py, next to this file

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the dev environment: its copier and uv
TARGETS = {"rps_ratio_min": 2.0, "p99_ms_max": 20.0, "bare_ratio_min": 0.95}
NAMES = ("ours", "bare", "mlflow")


def environment(work: Path) -> dict[str, str]:
    """The pipeline benchmark's environment, and no proxy for the servers on 127.0.0.1."""
    env = pipeline_environment(work)
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    return env


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_project(work: Path, env: dict[str, str]) -> Path:
    root = work / "my-ml-project"
    sh(
        [str(BIN / "copier"), "copy", "-q", "--defaults", "--vcs-ref", "HEAD", str(REPO), str(root)],
        work,
        env,
    )
    sh(["git", "init", "-q"], root, env)
    sh(["uv", "sync", "-q"], root, env)
    sh(["uv", "run", "--frozen", "dvc", "repro", "-q"], root, env)
    return root


class Server:
    """A server process on 127.0.0.1; ``start`` waits until ``ready`` answers 200."""

    def __init__(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str], port: int, ready: str):
        self.name, self.cmd, self.cwd, self.env, self.port, self.ready = name, cmd, cwd, env, port, ready
        self.process: subprocess.Popen | None = None
        self.start_s: float | None = None

    def start(self, timeout: float = 120.0) -> None:
        log = open(self.cwd / f"{self.name}.log", "w")  # noqa: SIM115 (closed with the process)
        began = time.perf_counter()
        self.process = subprocess.Popen(
            self.cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        while time.perf_counter() - began < timeout:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited:\n{(self.cwd / f'{self.name}.log').read_text()[-3000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", self.ready)
                if connection.getresponse().status == 200:
                    self.start_s = time.perf_counter() - began
                    return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit(f"{self.name} did not answer {self.ready} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def post(connection: http.client.HTTPConnection, route: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", route, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def load(port: int, route: str, bodies: list[bytes], requests: int, concurrency: int) -> dict:
    """``requests`` POSTs from ``concurrency`` threads, each on its own keep-alive connection."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(requests))
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        post(connection, route, bodies[0])  # connect outside the measurement
        barrier.wait()
        mine = []
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                break
            start = time.perf_counter()
            status, _ = post(connection, route, bodies[number % len(bodies)])
            mine.append((time.perf_counter() - start) * 1000)
            if status != 200:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "concurrency": concurrency,
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "errors": errors[0],
    }


def held_out_rows(root: Path, env: dict[str, str], target: str = "target") -> list[dict]:
    """The held-out split's rows without the target, read in the project's environment (the split
    is Parquet; this process has the standard library only)."""
    script = (
        "import json, pyarrow.parquet as pq; "
        f"rows = pq.read_table('data/prepared/test.parquet', use_threads=False).to_pylist(); "
        f"print(json.dumps([{{k: float(v) for k, v in r.items() if k != {target!r}}} for r in rows]))"
    )
    return json.loads(sh(["uv", "run", "--frozen", "python", "-c", script], root, env))


def agree(ours_port: int, mlflow_port: int, rows: list[dict]) -> bool:
    """Both servers give the same predictions for the same rows."""
    a = http.client.HTTPConnection("127.0.0.1", ours_port, timeout=30)
    b = http.client.HTTPConnection("127.0.0.1", mlflow_port, timeout=30)
    _, ours = post(a, "/predict", json.dumps({"instances": rows}).encode())
    _, theirs = post(b, "/invocations", json.dumps({"dataframe_records": rows}).encode())
    return json.loads(ours)["predictions"] == json.loads(theirs)["predictions"]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--requests", type=int, default=2000, help="measured requests per run")
    options.add_argument("--warmup", type=int, default=300, help="unmeasured requests per server first")
    options.add_argument("--repeats", type=int, default=3)
    options.add_argument("--concurrency", default="1,8", help="comma-separated client concurrencies")
    options.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench/results/serve.json",
        help="default: bench/results/serve.json (not tracked; bench/serve-results.json is the README's run)",
    )
    options.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = options.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = environment(work)
    servers: list[Server] = []
    try:
        print("building the default project (render, uv sync, dvc repro) ...", flush=True)
        root = build_project(work, env)
        pkg = next(p.name for p in (root / "src").iterdir() if (p / "__main__.py").exists())
        venv_bin = root / ".venv/bin"
        serve_env = {**env, "PATH": f"{venv_bin}{os.pathsep}{env['PATH']}"}
        ours = Server(
            "ours",
            [str(venv_bin / "python"), "-m", pkg, "serve", "--port", str(port := free_port())],
            root,
            serve_env,
            port,
            "/health",
        )
        mlflow_port = free_port()
        theirs = Server(
            "mlflow",
            [
                str(venv_bin / "mlflow"),
                "models",
                "serve",
                "-m",
                "models:/my-ml-project@challenger",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
            ],
            root,
            {**serve_env, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"},
            mlflow_port,
            "/ping",
        )
        bare = Server(
            "bare",
            [
                str(venv_bin / "python"),
                str(REPO / "bench/bare_app.py"),
                "--port",
                str(bare_port := free_port()),
            ],
            root,
            serve_env,
            bare_port,
            "/health",
        )
        servers = [ours, bare, theirs]
        for server in servers:
            server.start()
            print(f"{server.name} answered after {server.start_s:.1f} s", flush=True)
        rows = held_out_rows(root, env)
        bodies = {
            "ours": ("/predict", [json.dumps({"instances": [row]}).encode() for row in rows]),
            "bare": ("/predict", [json.dumps({"instances": [row]}).encode() for row in rows]),
            "mlflow": ("/invocations", [json.dumps({"dataframe_records": [row]}).encode() for row in rows]),
        }
        same = agree(ours.port, theirs.port, rows)
        for server in servers:
            route, payloads = bodies[server.name]
            load(server.port, route, payloads, args.warmup, 1)
        samples: list[dict] = []
        for repeat in range(args.repeats):
            for concurrency in concurrencies:
                turn = repeat % len(servers)  # each server in turn goes first: order effects cancel
                for server in servers[turn:] + servers[:turn]:
                    route, payloads = bodies[server.name]
                    result = load(server.port, route, payloads, args.requests, concurrency)
                    samples.append({"server": server.name, "repeat": repeat, **result})
                    print(f"  {server.name:6} c={concurrency} {result}", flush=True)
    finally:
        for server in servers:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")

    summary = []
    for concurrency in concurrencies:
        row = {"concurrency": concurrency}
        for name in NAMES:
            runs = [s for s in samples if s["server"] == name and s["concurrency"] == concurrency]
            row[name] = {
                key: round(statistics.median(r[key] for r in runs), 2)
                for key in ("requests_per_s", "p50_ms", "p99_ms")
            } | {"errors": sum(r["errors"] for r in runs), "n": len(runs)}
        row["rps_ratio"] = round(row["ours"]["requests_per_s"] / row["mlflow"]["requests_per_s"], 2)
        row["p99_ratio"] = round(row["mlflow"]["p99_ms"] / row["ours"]["p99_ms"], 2)
        row["bare_ratio"] = round(row["ours"]["requests_per_s"] / row["bare"]["requests_per_s"], 2)
        row["targets_met"] = (
            row["rps_ratio"] >= TARGETS["rps_ratio_min"]
            and row["ours"]["p99_ms"] <= TARGETS["p99_ms_max"]
            and row["bare_ratio"] >= TARGETS["bare_ratio_min"]
        )
        summary.append(row)
    info = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "requests_per_run": args.requests,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "start_s": {s.name: round(s.start_s or 0, 1) for s in servers},
        "targets": TARGETS,
        "same_predictions": same,
    }
    lines = [
        f"Run {info['date']} on {info['cpus']} CPUs, {args.requests} requests per run, "
        f"{args.repeats} repeats (medians), one JSON row per request; predictions identical: {same}; "
        f"start-up: ours {info['start_s']['ours']} s, mlflow {info['start_s']['mlflow']} s",
        "",
        "| concurrency | server | requests/s | p50 ms | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in summary:
        for name, label in (
            ("ours", "`python -m <pkg> serve`"),
            ("bare", "bare ASGI app, same work"),
            ("mlflow", "`mlflow models serve`"),
        ):
            r = row[name]
            lines.append(
                f"| {row['concurrency']} | {label} | {r['requests_per_s']} | {r['p50_ms']} | "
                f"{r['p99_ms']} | {r['errors']} |"
            )
    lines += [
        "",
        f"| concurrency | requests/s ours/bare (target ≥ {TARGETS['bare_ratio_min']}x) | ours/mlflow (target ≥ 2x) "
        "| p99 mlflow/ours | our p99 ≤ 20 ms |",
    ]
    lines.append("|---:|---:|---:|---:|---|")
    for row in summary:
        lines.append(
            f"| {row['concurrency']} | {row['bare_ratio']}x | {row['rps_ratio']}x | {row['p99_ratio']}x | "
            f"{'met' if row['ours']['p99_ms'] <= TARGETS['p99_ms_max'] else 'missed'} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"info": info, "summary": summary, "samples": samples}, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if all(row["targets_met"] for row in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
