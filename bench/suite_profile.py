"""Where the template's own test suite spends its CPU time, by command and by test module.

Runs `make test` (all of it, or TESTS=...) with ``SUITE_PROFILE`` set: the suite's helpers
(tests/conftest.py) then append one JSON line per render and per command they run in a generated
project (``make repro``, ``make test``, ``git commit``...), with its wall and CPU seconds (the
command's whole process tree). This script times the run, sums the lines up by kind of command and
by test module, prints two markdown tables and writes JSON (default
bench/suite-profile-results.json). What the lines do not cover is the pytest workers' own work
and the few processes the tests start themselves (servers, podman): the "not in the lines" row.

    uv run python bench/suite_profile.py                      # the whole suite (10 to 25 min)
    uv run python bench/suite_profile.py --tests tests/test_serving.py
    uv run python bench/suite_profile.py --lines FILE         # sum up lines written earlier
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPTIONS_WITH_VALUES = {
    "--extra",
    "--group",
    "--with",
    "--python",
    "--project",
    "--directory",
    "-C",
    "-m",
    "-c",
}


TEST = "(test)"  # the line conftest writes for a whole test


def kind(command: str) -> str:
    """``make repro``, ``git commit``, ``uv run pytest``, ``copier copy``...: a command without its
    arguments, paths and ports."""
    words, skip = [], False
    for word in command.split():
        if not skip and not word.startswith("-") and "=" not in word:
            words.append(word)
        skip = word in OPTIONS_WITH_VALUES
    if not words:
        return command
    head = Path(words[0]).name
    if head == "uv" and len(words) > 1 and words[1] == "run":
        return " ".join(["uv run", *(Path(w).name for w in words[2:3])])
    if head in {"make", "git", "uv", "copier", "dvc", "python", "podman"} and len(words) > 1:
        return f"{head} {words[1]}" if not words[1].startswith(("/", ".")) else head
    return head


def module(test: str) -> str:
    return re.split(r"::| ", test or "?", maxsplit=1)[0]


def summarise(lines: list[dict], total_cpu: float | None) -> dict:
    tests = sorted((line for line in lines if line["command"] == TEST), key=lambda line: -line["cpu"])
    lines = [line for line in lines if line["command"] != TEST]
    by_kind: dict[str, list[dict]] = defaultdict(list)
    by_module: dict[str, float] = defaultdict(float)
    for line in lines:
        by_kind[kind(line["command"])].append(line)
        by_module[module(line["test"])] += line["cpu"]
    captured = sum(line["cpu"] for line in lines)
    kinds = [
        {
            "command": name,
            "runs": len(runs),
            "cpu_s": round(sum(r["cpu"] for r in runs), 1),
            "median_cpu_s": round(statistics.median(r["cpu"] for r in runs), 2),
            "wall_s": round(sum(r["wall"] for r in runs), 1),
        }
        for name, runs in by_kind.items()
    ]
    kinds.sort(key=lambda k: -k["cpu_s"])
    return {
        "captured_cpu_s": round(captured, 1),
        "suite_cpu_s": None if total_cpu is None else round(total_cpu, 1),
        "commands": kinds,
        "modules": {name: round(cpu, 1) for name, cpu in sorted(by_module.items(), key=lambda m: -m[1])},
        "tests_cpu_s": round(sum(line["cpu"] for line in tests), 1),
        "by_test": [{"test": t["test"], "cpu_s": t["cpu"], "wall_s": t["wall"]} for t in tests],
    }


def table(summary: dict, top: int) -> str:
    total = summary["suite_cpu_s"] or summary["captured_cpu_s"]
    rows = [
        "| command | runs | CPU (s) | share of the suite's CPU | median CPU per run (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for k in summary["commands"][:top]:
        share = 100 * k["cpu_s"] / total
        rows.append(
            f"| `{k['command']}` | {k['runs']} | {k['cpu_s']:.0f} | {share:.1f} % | {k['median_cpu_s']:.1f} |"
        )
    if summary["suite_cpu_s"] is not None:
        rest = summary["suite_cpu_s"] - summary["captured_cpu_s"]
        rows.append(
            f"| not in the lines (pytest workers, servers, podman) | | {rest:.0f} | {100 * rest / total:.1f} % | |"
        )
    rows += ["", "| test module | CPU of its commands (s) |", "|---|---:|"]
    rows += [f"| `{name}` | {cpu:.0f} |" for name, cpu in summary["modules"].items()]
    if summary["by_test"]:
        rows += [
            "",
            f"| test (the worker's CPU and its children's: {summary['tests_cpu_s']:.0f} s in all) | CPU (s) | wall (s) |",
        ]
        rows += ["|---|---:|---:|"]
        rows += [
            f"| `{t['test']}` | {t['cpu_s']:.1f} | {t['wall_s']:.1f} |" for t in summary["by_test"][:top]
        ]
    return "\n".join(rows)


def run_suite(tests: str, lines_file: Path) -> tuple[int, float, float]:
    """`make test` with SUITE_PROFILE; returns its exit code, wall and CPU seconds (all processes)."""
    env = {**os.environ, "SUITE_PROFILE": str(lines_file)}
    if tests:
        env["TESTS"] = tests
    started, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    code = subprocess.run(["make", "test"], cwd=REPO, env=env).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return code, time.monotonic() - started, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", default="", help="the part to run (TESTS=...); default: all of it")
    parser.add_argument("--lines", type=Path, help="sum up this SUITE_PROFILE file instead of running")
    parser.add_argument("--top", type=int, default=15, help="commands shown in the table")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "suite-profile-results.json")
    args = parser.parse_args(argv)

    code, wall, cpu = 0, None, None
    if args.lines:
        lines_file = args.lines
    else:
        lines_file = Path(tempfile.mkdtemp(prefix="suite-profile-")) / "lines.jsonl"
        code, wall, cpu = run_suite(args.tests, lines_file)
    lines = [json.loads(line) for line in lines_file.read_text(encoding="utf-8").splitlines() if line]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    summary = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "commit": commit.stdout.strip(),
        "tests": args.tests or "all",
        "exit_code": code,
        "wall_s": None if wall is None else round(wall, 1),
        **summarise(lines, cpu),
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if wall is not None:
        print(f"\n`make test` ({summary['tests']}): exit {code}, {wall:.0f} s wall, {cpu:.0f} s CPU")
    print(table(summary, args.top))
    print(f"\nwritten: {args.out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
