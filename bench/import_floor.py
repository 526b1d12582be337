"""What a generated project's pipeline stages spend on importing their libraries.

For each stage of dvc.yaml, in a project that has run its pipeline once (``make demo`` leaves one
in .demo/my-ml-project): the stage is run once to list the modules it loads; then, N times each,
a fresh Python process imports exactly those modules of pandas, scikit-learn, SciPy, joblib,
Great Expectations, MLflow and Evidently, and the stage itself runs as DVC runs it
(``python -m <package> <stage>``). Medians; the stages' outputs are rewritten as a forced repro
would.

The import column is a floor for the pipeline on this machine: it is paid once per stage process,
before the stage does any work, whatever the stage does.

    uv run python bench/import_floor.py [PROJECT] [--repeats N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

LIBRARIES = ("pandas", "numpy", "sklearn", "scipy", "joblib", "great_expectations", "mlflow", "evidently")
# Run in the project's interpreter: run one stage, then write the names of the loaded modules.
PROBE = """
import atexit, json, runpy, sys
atexit.register(lambda: open({out!r}, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["{package}", "{stage}"]
runpy.run_module("{package}", run_name="__main__")
"""
IMPORT = """
import importlib
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def arguments(description: str, repeats: int, argv: list[str] | None) -> argparse.Namespace:
    """PROJECT (default: what `make demo` leaves), --repeats, --out: the options of the scripts that
    time the stages of a project that has run its pipeline (this one and collector.py)."""
    options = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("project", nargs="?", default=".demo/my-ml-project", type=Path)
    options.add_argument("--repeats", type=int, default=repeats)
    options.add_argument("--out", type=Path, help="write the medians as JSON here")
    return options.parse_args(argv)


def run_project(path: Path) -> tuple[Path, Path, str, list[str], dict[str, str]]:
    """The project at ``path``, its interpreter, package and stages, and the environment DVC would
    run them in; exits with what to do when the project has no environment."""
    project = path.resolve()
    python = project / ".venv/bin/python"
    if not python.exists():
        sys.exit(f"{python} not found: run `make demo` (or `make setup && make repro` in {project}) first")
    package = next(p.name for p in (project / "src").iterdir() if (p / "__main__.py").is_file())
    stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    drop = ("PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true", GX_ANALYTICS_ENABLED="false")
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return project, python, package, stages, env


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, 3, argv)
    project, python, package, stages, env = run_project(args.project)

    rows: dict[str, dict[str, float | list[str]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        listed = Path(scratch) / "modules.json"
        for stage in stages:
            probe = PROBE.format(out=str(listed), package=package, stage=stage)
            subprocess.run([str(python), "-c", probe], cwd=project, env=env, capture_output=True, check=False)
            loaded = json.loads(listed.read_text())
            modules = [m for m in loaded if m.split(".")[0] in LIBRARIES]
            imports = [
                timed([str(python), "-c", IMPORT.format(modules=modules)], project, env)
                for _ in range(args.repeats)
            ]
            whole = [timed([str(python), "-m", package, stage], project, env) for _ in range(args.repeats)]
            libraries = sorted({m.split(".")[0] for m in modules})
            rows[stage] = {
                "imports_s": statistics.median(imports),
                "stage_s": statistics.median(whole),
                "libraries": libraries,
            }
            print(
                f"{stage:10s} imports {rows[stage]['imports_s']:5.2f} s   stage {rows[stage]['stage_s']:5.2f} s"
                f"   {', '.join(libraries)}",
                flush=True,
            )
    total_imports = sum(float(r["imports_s"]) for r in rows.values())
    total = sum(float(r["stage_s"]) for r in rows.values())
    print(
        f"{'all':10s} imports {total_imports:5.2f} s   stages {total:5.2f} s ({total_imports / total:.0%} imports)"
    )
    if args.out:
        result = {"stages": rows, "imports_s": total_imports, "stages_s": total, "repeats": args.repeats}
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
