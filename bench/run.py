"""Benchmarks of the template and of the project it generates, all measured in one run.

    make env && uv run python bench/run.py [--repeats N] [--out bench/results.json]

Prints a markdown table of medians (min, max, n), the ratios and a breakdown of where the
pipeline's time goes, and writes everything as JSON. See bench/README.md for what each row means.
Only the standard library and the dev environment's CLIs (copier, uv) are used here; the generated
project brings its own environment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the dev environment: its copier and uv are the ones timed
STAGES = ("collect", "profile", "validate", "prepare", "train", "evaluate")
GENERATION_RUNS = 5
# Everything `dvc repro` writes: stage outputs, DVC's lock and cache, the MLflow store.
OUTPUTS = (
    "data/raw",
    "data/prepared",
    "models",
    "reports",
    "dvc.lock",
    ".dvc/cache",
    ".dvc/tmp",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
)
TARGETS = {"generation": 2.0, "setup_locked": 30.0, "setup_unlocked": 30.0, "repro_scratch": 30.0}
RATIO_TARGETS = {"c/a": 1.5, "first/c": 1.2}
# (b): the ML work alone, in one process, through the generated package's own functions.
PURE_ML = """
from pathlib import Path
from {pkg}.config import load_params
from {pkg}.data.collect import collect
from {pkg}.data.prepare import prepare
from {pkg}.training import metrics
from {pkg}.training.train import fit, split_xy

root = Path.cwd()
params = load_params(root)
target, task = params["data"]["target"], params["task"]
train, test, _ = prepare(collect(params["data"], root), target, task, params["prepare"])
model = fit(train, target, task, params["train"])
positive = model.classes_[-1] if task == "classification" else None
print(metrics.compute(task, model, *split_xy(test, target), positive)[0])
"""
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def environment(work: Path) -> dict[str, str]:
    # Bytecode caching must stay on (the generated Makefile unexports PYTHONDONTWRITEBYTECODE too),
    # and nothing may point uv or MLflow somewhere else than the generated project.
    drop = ("PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "MLFLOW_TRACKING_URI")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        GX_ANALYTICS_ENABLED="false",
        DVC_SITE_CACHE_DIR=str(work / "dvc-site-cache"),  # keeps /var/tmp/dvc clean
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
    )
    return env


class Bench:
    def __init__(self, work: Path, repeats: int) -> None:
        self.work = work
        self.repeats = repeats
        self.env = environment(work)
        self.results: dict[str, dict] = {}
        self.extra: dict[str, object] = {}

    # ------------------------------------------------------------------ helpers
    def run(self, cmd: list[str], cwd: Path, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=self.env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if check and done.returncode != 0:
            sys.exit(
                f"bench: `{' '.join(map(str, cmd))}` failed ({done.returncode}) in {cwd}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return elapsed, done

    def timed(self, cmd: list[str], cwd: Path) -> float:
        return self.run(cmd, cwd)[0]

    def record(self, key: str, label: str, samples: list[float], target: float | None = None) -> None:
        self.results[key] = {
            "label": label,
            "median": statistics.median(samples),
            "min": min(samples),
            "max": max(samples),
            "n": len(samples),
            "samples": [round(s, 3) for s in samples],
            "target": target,
        }

    def render(self, dst: Path) -> float:
        cmd = [str(BIN / "copier"), "copy", "--defaults", "--quiet", "--vcs-ref", "HEAD", str(REPO), str(dst)]
        return self.timed(cmd, self.work)

    outputs = OUTPUTS  # what a run from scratch removes (a subclass may add paths)

    def clean(self, project: Path) -> None:
        for name in self.outputs:
            target = project / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()

    @staticmethod
    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ 1. generation
    def generation(self) -> Path:
        self.progress(f"generation: copier copy x{GENERATION_RUNS}")
        samples = [self.render(self.work / f"gen{i}" / "p") for i in range(GENERATION_RUNS)]
        self.record("generation", "1. generation: `copier copy --defaults --vcs-ref HEAD`", samples, 2.0)
        pristine = self.work / "gen0" / "p"
        for i in range(1, GENERATION_RUNS):
            shutil.rmtree(self.work / f"gen{i}")
        return pristine

    # ------------------------------------------------------------------ 2. set-up
    def setup(self, pristine: Path) -> bytes:
        self.progress("set-up: warm-up uv sync (warms uv's cache, writes uv.lock)")
        warm = self.work / "setup-warm"
        shutil.copytree(pristine, warm, symlinks=True)
        self.timed(["uv", "sync", "--quiet"], warm)
        lock = (warm / "uv.lock").read_bytes()
        shutil.rmtree(warm)

        unlocked, locked = [], []
        for i in range(self.repeats):
            self.progress(f"set-up: repeat {i + 1}/{self.repeats}")
            # A fresh copy of the rendered project each time: no .venv, no lock.
            fresh = self.work / f"setup-{i}-nolock"
            shutil.copytree(pristine, fresh, symlinks=True)
            unlocked.append(self.timed(["uv", "sync", "--quiet"], fresh))
            shutil.rmtree(fresh)
            # The same with the lock a teammate would have committed.
            fresh = self.work / f"setup-{i}-lock"
            shutil.copytree(pristine, fresh, symlinks=True)
            (fresh / "uv.lock").write_bytes(lock)
            locked.append(self.timed(["uv", "sync", "--quiet"], fresh))
            shutil.rmtree(fresh)
        self.record(
            "setup_unlocked", "2. set-up: `uv sync`, new .venv, no uv.lock yet (resolves)", unlocked, 30.0
        )
        self.record("setup_locked", "2. set-up: `uv sync`, new .venv, uv.lock present", locked, 30.0)
        return lock

    # ------------------------------------------------------------------ 3. dvc repro from scratch
    def project(self, pristine: Path, lock: bytes) -> Path:
        self.progress("pipeline: `make setup` and a first commit in a fresh project")
        project = self.work / "project"
        shutil.copytree(pristine, project, symlinks=True)
        (project / "uv.lock").write_bytes(lock)
        self.record(
            "setup_make",
            "2. `make setup`, uv.lock present: uv sync, bytecode caches, git, pre-commit hook (once)",
            [self.timed(["make", "setup"], project)],
        )
        self.timed(["git", "add", "--all"], project)
        self.timed(["git", "commit", "--quiet", "--no-verify", "-m", "bench: rendered project"], project)
        return project

    def repro_scratch(self, project: Path) -> None:
        repro = ["uv", "run", "--frozen", "dvc", "repro"]
        self.clean(project)
        self.progress("pipeline: the first dvc repro after make setup")
        self.record(
            "repro_first",
            "3. first `dvc repro` after `make setup` (a new environment)",
            [self.timed(repro, project)],
        )
        samples = []
        for i in range(self.repeats):
            self.progress(f"pipeline: dvc repro from scratch {i + 1}/{self.repeats}")
            self.clean(project)
            samples.append(self.timed(repro, project))
        self.record("repro_scratch", "3. `uv run --frozen dvc repro` from scratch", samples, 30.0)

    # ------------------------------------------------------------------ 4. orchestration overhead
    def overhead(self, project: Path, pkg: str) -> None:
        python = str(project / ".venv" / "bin" / "python")
        forced = ["uv", "run", "--frozen", "dvc", "repro", "--force"]
        bare, pure, dvc = [], [], []
        per_stage: dict[str, list[float]] = defaultdict(list)
        for i in range(self.repeats):
            self.progress(f"overhead: (a) bare, (b) pure ML, (c) dvc repro -f {i + 1}/{self.repeats}")
            total = 0.0
            for stage in STAGES:
                elapsed = self.timed([python, "-m", pkg, stage], project)
                per_stage[stage].append(elapsed)
                total += elapsed
            bare.append(total)
            pure.append(self.timed([python, "-c", PURE_ML.format(pkg=pkg)], project))
            dvc.append(self.timed(forced, project))
        self.record("a", "4a. the 6 stages bare: `python -m <pkg> <stage>` (MLflow + GE, no DVC)", bare)
        self.record("b", "4b. pure ML, one process: collect, prepare, fit, metrics", pure)
        self.record("c", "4c. `uv run --frozen dvc repro --force`", dvc)
        for stage in STAGES:
            self.record(f"stage_{stage}", f"stage `{stage}` bare (from 4a)", per_stage[stage])

        self.progress("overhead: fixed costs (interpreter, uv run, dvc status)")
        self.record(
            "python_start",
            "fixed: `python -c pass` in the project's .venv",
            [self.timed([python, "-c", "pass"], project) for _ in range(self.repeats)],
        )
        self.record(
            "uv_run_start",
            "fixed: `uv run --frozen python -c pass`",
            [
                self.timed(["uv", "run", "--frozen", "python", "-c", "pass"], project)
                for _ in range(self.repeats)
            ],
        )
        self.record(
            "dvc_status",
            "fixed: `uv run --frozen dvc status` (pipeline up to date)",
            [self.timed(["uv", "run", "--frozen", "dvc", "status"], project) for _ in range(self.repeats)],
        )

    def imports(self, project: Path, pkg: str) -> None:
        """One `python -X importtime` run per stage: import time, by top-level package."""
        self.progress("attribution: python -X importtime for each stage")
        python = str(project / ".venv" / "bin" / "python")
        breakdown = {}
        for stage in STAGES:
            _, done = self.run([python, "-X", "importtime", "-m", pkg, stage], project)
            by_package: dict[str, int] = defaultdict(int)
            for line in done.stderr.splitlines():
                match = IMPORT_LINE.match(line)
                if match:
                    by_package[match.group(4).split(".")[0]] += int(match.group(1))
            total = sum(by_package.values()) / 1e6
            top = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:5]
            breakdown[stage] = {
                "import_s": round(total, 3),
                "top_packages_s": {name: round(us / 1e6, 3) for name, us in top},
            }
        # Each heavy library alone, in a fresh interpreter (cumulative, dependencies included).
        alone = {}
        for module in ("pandas", "sklearn", "great_expectations", "mlflow", "dvc.repo"):
            samples = [self.timed([python, "-c", f"import {module}"], project) for _ in range(2)]
            alone[module] = round(min(samples), 3)
        self.extra["imports_per_stage"] = breakdown
        self.extra["import_alone_s"] = alone


def package_name(project: Path) -> str:
    answers = (project / ".copier-answers.yml").read_text(encoding="utf-8")
    match = re.search(r"^package_name:\s*['\"]?([A-Za-z0-9_]+)", answers, re.MULTILINE)
    if not match:
        sys.exit("bench: no package_name in the rendered .copier-answers.yml")
    return match.group(1)


def publish(lines: list[str], results: dict, info: dict[str, str], out: Path | None) -> int:
    """Print a benchmark's table and machine, and write both as JSON to ``out`` when given."""
    print("\n".join(lines))
    print(f"machine: {info}")
    if out:
        out.write_text(json.dumps({"results": results, "machine": info}, indent=2) + "\n")
    return 0


def machine(project: Path | None) -> dict[str, str]:
    info = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": str(os.cpu_count()),
        "platform": platform.platform(),
        "python_dev_env": platform.python_version(),
    }
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
        info["ram"] = f"{kib / 1024 / 1024:.1f} GiB"
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        info["cpu"] = cpu.group(1).strip() if cpu else platform.processor()
    except (OSError, AttributeError):
        info["ram"] = "unknown"
    for name, cmd in (
        ("uv", ["uv", "--version"]),
        ("copier", [str(BIN / "copier"), "--version"]),
        ("template_commit", ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
    ):
        done = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
        )
        info[name] = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "unknown"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True)
    # A dirty template makes copier copy the working tree into a temporary commit first.
    info["template_dirty"] = str(bool(dirty.stdout.strip()))
    if project is not None:
        done = subprocess.run(
            [str(project / ".venv/bin/python"), "--version"], capture_output=True, text=True
        )
        info["python_project"] = done.stdout.strip().split()[-1]
    return info


def fmt(seconds: float) -> str:
    return f"{seconds:.2f}"


def report(results: dict[str, dict], extra: dict, info: dict[str, str]) -> tuple[str, dict]:
    a, b, c = (results[k]["median"] for k in ("a", "b", "c"))
    ratios = {"c/a": c / a, "c/b": c / b, "a/b": a / b}
    if "repro_first" in results:
        ratios["first/c"] = results["repro_first"]["median"] / c
    lines = [
        f"Run {info['date']} on {info['nproc']} CPUs ({info.get('cpu', '?')}), {info['ram']} RAM, "
        f"Python {info.get('python_project', '?')} (project) / {info['python_dev_env']} (dev env), "
        f"{info['uv']}, copier {info['copier'].split()[-1]}, template {info['template_commit']}"
        + (" + uncommitted changes" if info["template_dirty"] == "True" else ""),
        "",
        "| measurement | median (s) | min (s) | max (s) | n | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key, s in results.items():
        if key.startswith("stage_") or key in ("python_start", "uv_run_start", "dvc_status"):
            continue
        target = ""
        if s["target"] is not None:
            verdict = "met" if s["median"] <= s["target"] else "MISSED"
            target = f"≤ {s['target']:g} s: {verdict}"
        lines.append(
            f"| {s['label']} | {fmt(s['median'])} | {fmt(s['min'])} | {fmt(s['max'])} | {s['n']} | {target} |"
        )
    verdict = "met" if ratios["c/a"] <= RATIO_TARGETS["c/a"] else "MISSED"
    lines += [
        "",
        "| ratio (of medians) | value | target |",
        "|---|---:|---|",
        f"| c/a: DVC orchestration overhead | {ratios['c/a']:.2f}x | ≤ 1.5x: {verdict} |",
        f"| c/b: DVC + MLflow + GE vs the pure ML work | {ratios['c/b']:.2f}x | (reported) |",
        f"| a/b: MLflow + GE + 5 processes vs the pure ML work | {ratios['a/b']:.2f}x | (reported) |",
    ]
    if "first/c" in ratios:
        verdict = "met" if ratios["first/c"] <= RATIO_TARGETS["first/c"] else "MISSED"
        lines.append(
            f"| first/c: a new project's first `dvc repro` after `make setup` vs a forced repro "
            f"| {ratios['first/c']:.2f}x | ≤ 1.2x: {verdict} |"
        )
    lines += [
        "",
        "Where the time goes (stage medians from 4a; import time from one `python -X importtime` run"
        " per stage, which inflates it somewhat; top packages by their own import time):",
        "",
        "| stage | wall (s) | imports (s) | biggest imports (s) |",
        "|---|---:|---:|---|",
    ]
    per_stage = extra.get("imports_per_stage", {})
    for stage in STAGES:
        s = results[f"stage_{stage}"]
        imp = per_stage.get(stage, {})
        top = ", ".join(f"{name} {sec:.2f}" for name, sec in list(imp.get("top_packages_s", {}).items())[:3])
        lines.append(f"| {stage} | {fmt(s['median'])} | {imp.get('import_s', 0):.2f} | {top} |")
    fixed = ", ".join(
        f"{results[k]['label'].removeprefix('fixed: ')} {fmt(results[k]['median'])} s"
        for k in ("python_start", "uv_run_start", "dvc_status")
    )
    alone = ", ".join(f"`{m}` {s:.2f} s" for m, s in extra.get("import_alone_s", {}).items())
    lines += ["", f"Fixed costs (medians): {fixed}.", "", f"Importing each library alone: {alone}."]
    return "\n".join(lines), ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats of set-up and pipeline runs (default 3)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json", help="JSON results file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    for tool in ("copier", "uv"):
        if not (BIN / tool).exists():
            sys.exit(f"bench: {BIN / tool} is missing; run `make env` and start this with `uv run`")

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="template-bench-"))
    try:
        bench = Bench(work, args.repeats)
        pristine = bench.generation()
        pkg = package_name(pristine)
        lock = bench.setup(pristine)
        project = bench.project(pristine, lock)
        bench.repro_scratch(project)
        bench.overhead(project, pkg)
        bench.imports(project, pkg)
        info = machine(project)
    finally:
        if args.keep:
            print(f"bench: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    text, ratios = report(bench.results, bench.extra, info)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": " ".join(["uv run python bench/run.py", *sys.argv[1:]]),
        "machine": info,
        "repeats": args.repeats,
        "total_runtime_s": round(total, 1),
        "results": bench.results,
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        **bench.extra,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(text)
    shown = args.out.resolve()
    shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
    print(f"\nTotal benchmark runtime {total:.0f} s; JSON in {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
