"""Write the bytecode caches of the heavy libraries the pipeline imports, once per environment.

uv installs packages without compiling them (pip compiles at install), so a new environment's
first ``make repro`` would also write the cache of every module its stages, DVC and a new MLflow
store load: seconds more than every later run on two cores. ``make setup`` runs this instead,
in three processes side by side. It does nothing when the caches are already there (a second
``make setup``, an environment shared between projects), and a library that fails to import
is reported, never a failed set-up.

    python -m <package>.bytecode
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

# One process per group, each heavy on its own; names whose library is not installed are skipped.
GROUPS = (
    (
        "great_expectations",
        "sklearn.compose",
        "sklearn.datasets",
        "sklearn.ensemble",
        "sklearn.impute",
        "sklearn.linear_model",
        "sklearn.model_selection",
        "sklearn.pipeline",
        "sklearn.preprocessing",
        "torch",
        "transformers",
        "peft",
    ),
    (  # MLflow, and what a new store and a logged run load besides
        "mlflow",
        "mlflow.pyfunc",
        "mlflow.sklearn",
        "mlflow.store.tracking.sqlalchemy_store",
        "mlflow.store.model_registry.sqlalchemy_store",
        "mlflow.tracing",
        "sqlalchemy.dialects.sqlite",
        "alembic.command",
        "alembic.autogenerate",
        "mako.template",
        "opentelemetry.sdk.trace",
        "opentelemetry.sdk.metrics",
        "narwhals.stable.v2",
        "narwhals._pandas_like.dataframe",
        "sklearn.metrics",
        "matplotlib.pyplot",
        "presidio_analyzer",
    ),
    (  # DVC: every command's parser, the pipeline graph, git
        "dvc.repo",
        "dvc.cli",
        "dvc.cli.parser",
        "dvc.repo.reproduce",
        "networkx",
        "scmrepo.git",
        "dulwich.repo",
        "pygit2",
        "git",
        "flufl.lock",
        "dvc_render",
    ),
)
# Loaded by path, not imported: MLflow's database migrations, which a new store runs.
SCRIPTS = ("mlflow.store.db_migrations",)

# The collector set as for a command (process.py): a fifth less time for the same imports.
COLLECTOR = f"from {__package__} import process; process.start()"


def installed(name: str) -> bool:
    """Whether ``name``'s library is installed (found, not imported)."""
    return importlib.util.find_spec(name.split(".")[0]) is not None


def cached(name: str) -> bool:
    """Whether the top module of ``name``'s library already has its bytecode cache."""
    spec = importlib.util.find_spec(name.split(".")[0])
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return True
    return Path(importlib.util.cache_from_source(spec.origin)).is_file()


def warm(groups=GROUPS) -> list[str]:
    """Import each group in its own process (all at once); returns the groups that failed."""
    todo = [[n for n in group if installed(n)] for group in groups]
    todo = [group for group in todo if group and not all(cached(n) for n in group)]
    runs = [
        (
            group,
            subprocess.Popen(
                [sys.executable, "-c", f"{COLLECTOR}; import {', '.join(group)}; process.freeze()"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        )
        for group in todo
    ]
    return [" ".join(group) for group, run in runs if run.wait() != 0]


def compile_scripts(folders=SCRIPTS) -> None:
    """Compile every module under each installed folder of ``folders`` (up to date: skipped),
    without importing its library."""
    import compileall

    for name in folders:
        top, *rest = name.split(".")
        spec = importlib.util.find_spec(top)
        if spec is not None and spec.origin:
            folder = Path(spec.origin).parent.joinpath(*rest)
            if folder.is_dir():
                compileall.compile_dir(folder, quiet=2)


def main(argv: list[str] | None = None) -> int:
    import argparse

    argparse.ArgumentParser(
        prog=f"python -m {__package__}.bytecode", description=__doc__.splitlines()[0]
    ).parse_args(argv)
    failed = warm(GROUPS)
    compile_scripts(SCRIPTS)
    for group in failed:
        print(f"bytecode: could not import {group}; its first run will be slower", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
