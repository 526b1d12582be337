"""What the garbage collector's settings of ``process.py`` save in each pipeline stage, side by side.

For each stage of dvc.yaml, in a project that has run its pipeline once (``make demo`` leaves one
in .demo/my-ml-project), two ways of running the same command take turns, N times each:

- ``default``: Python's own collector settings, ``main([stage])`` called from ``python -c``;
- ``shipped``: ``python -m <package> <stage>``, as DVC runs it (``process.start`` before the
  command, ``process.finish`` after it).

Reported per stage: median wall and CPU seconds (the process's own, from ``wait4``), peak memory
(max RSS), and the ratio of the medians. The stages' outputs are rewritten as a forced repro would.

    uv run python bench/collector.py [PROJECT] [--repeats N] [--out FILE]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from import_floor import arguments, run_project  # this folder: `python bench/collector.py`

DEFAULT = "import sys; from {package}.__main__ import main; sys.exit(main([{stage!r}]))"


def measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak memory (MiB) of one run of ``cmd``."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({process.returncode}) in {cwd}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, 5, argv)
    project, python, package, stages, env = run_project(args.project)
    ways = {
        "default": lambda stage: [str(python), "-c", DEFAULT.format(package=package, stage=stage)],
        "shipped": lambda stage: [str(python), "-m", package, stage],
    }

    rows: dict[str, dict[str, dict[str, float]]] = {}
    print(f"{'stage':10s} {'default: wall / CPU / MiB':>28s} {'shipped: wall / CPU / MiB':>28s}  CPU ratio")
    for stage in stages:
        samples: dict[str, list[tuple[float, float, float]]] = {way: [] for way in ways}
        for _ in range(args.repeats):  # taking turns: the machine's noise hits both alike
            for way, command in ways.items():
                samples[way].append(measured(command(stage), project, env))
        rows[stage] = {
            way: {
                "wall_s": statistics.median(s[0] for s in runs),
                "cpu_s": statistics.median(s[1] for s in runs),
                "max_rss_mib": statistics.median(s[2] for s in runs),
            }
            for way, runs in samples.items()
        }
        a, b = rows[stage]["default"], rows[stage]["shipped"]
        print(
            f"{stage:10s} {a['wall_s']:9.2f} / {a['cpu_s']:5.2f} / {a['max_rss_mib']:5.0f}"
            f" {b['wall_s']:12.2f} / {b['cpu_s']:5.2f} / {b['max_rss_mib']:5.0f}"
            f"  {b['cpu_s'] / a['cpu_s']:.2f}x",
            flush=True,
        )
    totals = {
        way: {key: sum(r[way][key] for r in rows.values()) for key in ("wall_s", "cpu_s")} for way in ways
    }
    print(
        f"{'all':10s} {totals['default']['wall_s']:9.2f} / {totals['default']['cpu_s']:5.2f}"
        f" {totals['shipped']['wall_s']:20.2f} / {totals['shipped']['cpu_s']:5.2f}"
        f"        {totals['shipped']['cpu_s'] / totals['default']['cpu_s']:.2f}x"
    )
    if args.out:
        result = {"stages": rows, "totals": totals, "repeats": args.repeats}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
