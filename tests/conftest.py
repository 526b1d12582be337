"""Shared helpers: render the template, and one Python environment for every generated project.

Rendering uses the working tree of this repository (uncommitted changes included) as a plain
folder (``working_tree``), or a git repository where a test is about what Copier records or about
updates. Generated projects run their own Makefile targets in subprocesses whose environment
comes from ``project_env``: every project syncs into ONE shared virtual environment (each
``uv sync`` only swaps the project's own editable package), uv's global cache is shared, bytecode
caching stays on, and nothing phones home.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from contextlib import closing
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv") or "uv"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Template Tests",
    "GIT_AUTHOR_EMAIL": "template-tests@example.com",
    "GIT_COMMITTER_NAME": "Template Tests",
    "GIT_COMMITTER_EMAIL": "template-tests@example.com",
}
# What every generated project holds, whichever the profile (`{pkg}` is the package name): the
# shared core. test_render.py and test_llmops.py add each profile's own files.
CORE_FILES = """
.copier-answers.yml
.dvc/.gitignore
.dvc/config
.dvcignore
.gitignore
.pre-commit-config.yaml
Makefile
README.md
dvc.yaml
params.yaml
pyproject.toml
business/README.md
business/kpis.yaml
business/roles.yaml
business/tools.yaml
data/README.md
infra/README.md
infra/github/setup.py
infra/template/migrations.yaml
infra/template/update.py
.github/workflows/template-update.yml
.github/dependabot.yml
src/{pkg}/__init__.py
src/{pkg}/__main__.py
src/{pkg}/bytecode.py
src/{pkg}/business/__init__.py
src/{pkg}/business/cost.py
src/{pkg}/business/roles.py
src/{pkg}/ci/README.md
src/{pkg}/ci/__init__.py
src/{pkg}/ci/gate.py
src/{pkg}/ci/maturity/__init__.py
src/{pkg}/ci/maturity/__main__.py
src/{pkg}/ci/maturity/cli.py
src/{pkg}/ci/maturity/evidence.py
src/{pkg}/ci/maturity/levels.py
src/{pkg}/ci/maturity/repo.py
src/{pkg}/ci/maturity/schema.json
src/{pkg}/cli.py
src/{pkg}/config.py
src/{pkg}/errors.py
src/{pkg}/firstrun.py
src/{pkg}/expectations.py
src/{pkg}/files.py
src/{pkg}/params.py
src/{pkg}/gates.py
src/{pkg}/handbook.py
src/{pkg}/lockcheck.py
src/{pkg}/process.py
src/{pkg}/reports.py
src/{pkg}/settings.py
src/{pkg}/registry/README.md
src/{pkg}/registry/__init__.py
src/{pkg}/registry/promote.py
src/{pkg}/registry/tracking.py
src/{pkg}/serving/__init__.py
src/{pkg}/serving/base.py
src/{pkg}/serving/loadtest.py
src/{pkg}/serving/log.py
src/{pkg}/serving/qa.py
src/{pkg}/serving/retention.py
src/{pkg}/serving/tally.py
tests/__init__.py
tests/conftest.py
tests/test_business.py
tests/test_handbook.py
tests/test_bytecode.py
tests/test_lockcheck.py
tests/test_process.py
""".split()
OFFLINE = {"DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false"}
# `SUITE_PROFILE=<file>`: every render and every command run through ``run`` appends one JSON line
# (test, command, wall and CPU seconds) to that file; bench/suite_profile.py sums them up.
SUITE_PROFILE = os.environ.get("SUITE_PROFILE")


def _profile(command: str, wall: float, cpu: float, test: str | None = None) -> None:
    if SUITE_PROFILE:
        test = test or os.environ.get("PYTEST_CURRENT_TEST", "")
        line = json.dumps({"test": test, "command": command, "wall": round(wall, 3), "cpu": round(cpu, 3)})
        with open(SUITE_PROFILE, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With SUITE_PROFILE, one more line per test: the worker's CPU and its finished children's over
    the test's setup, call and teardown (``"command": "(test)"``; a module fixture counts where it is
    built)."""
    if not SUITE_PROFILE:
        yield
        return
    started, cpu = time.monotonic(), time.process_time() + _children_cpu()
    yield
    _profile("(test)", time.monotonic() - started, time.process_time() + _children_cpu() - cpu, item.nodeid)


_working_tree: Path | None = None


def working_tree() -> Path:
    """This repository's working tree as a plain folder (its tracked and new files as they are now),
    made once per test process. Copier renders a folder as it is, while a git source is cloned on
    every render (a third of a second of CPU each, over a hundred renders a run)."""
    global _working_tree
    if _working_tree is None:
        import atexit
        import tempfile

        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        copy = Path(tempfile.mkdtemp(prefix="template-")) / "template"
        for name in filter(None, listed.split("\0")):
            source = REPO_ROOT / name
            if source.is_file():  # deleted but not yet committed: not in the working tree
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy / name)
        atexit.register(shutil.rmtree, copy.parent, ignore_errors=True)
        _working_tree = copy
    return _working_tree


_rendered: dict[str, Path] = {}  # the answers of a render from the working tree -> a pristine copy


def _lighter_copier() -> None:
    """Two costs of every in-process render that change nothing in its output, taken off once per
    process (about 0.55 s of a render's 0.75 s of CPU here):

    - Copier compiles some 2,000 Jinja strings per render (each path's name, each default, each
      file) and keeps none: the compiled code is shared here, keyed by the source and every setting
      of the environment that the lexer, parser or code generator reads (autoescaping, a filter's
      or test's name and what it is passed; the functions behind the names are Copier's own, the
      same in every render of the process), so a template edited between renders is compiled
      again. ``test_render`` compares a render made here with Copier's own command's;
    - Copier asks git for ``core.fileMode`` once per rendered file, to sync the executable bit to
      the destination's git index: with no repository at or above the destination there is no
      index, and the sync has nothing to do. Destinations inside a repository still run it."""
    import copier._main
    import jinja2
    from jinja2.utils import _PassArg

    if getattr(jinja2.Environment.compile, "shared", False):
        return
    compile_one, compiled = jinja2.Environment.compile, {}

    def passed(functions: dict) -> tuple:
        return tuple(sorted((name, str(_PassArg.from_obj(f))) for name, f in functions.items()))

    def compile_shared(env, source, name=None, filename=None, raw=False, defer_init=False):
        if not isinstance(source, str):  # a parsed template: compiled as it comes
            return compile_one(env, source, name, filename, raw, defer_init)
        key = (
            source, name, filename, raw, defer_init, env.block_start_string, env.block_end_string,
            env.variable_start_string, env.variable_end_string, env.comment_start_string,
            env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
            env.trim_blocks, env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline,
            tuple(sorted(env.extensions)), env.optimized, env.is_async, env.sandboxed,
            str(_PassArg.from_obj(env.finalize)) if env.finalize else None,
            env.autoescape(name) if callable(env.autoescape) else env.autoescape,
            passed(env.filters), passed(env.tests),
        )  # fmt: skip
        if key not in compiled:
            compiled[key] = compile_one(env, source, name, filename, raw, defer_init)
        return compiled[key]

    compile_shared.shared = True
    jinja2.Environment.compile = compile_shared
    sync = getattr(copier._main.Worker, "_sync_git_index_executable_bit", None)
    if sync is not None:

        def sync_in_repositories(worker, *args, **kwargs):
            root = Path(worker.subproject.local_abspath).resolve()
            if any((folder / ".git").exists() for folder in (root, *root.parents)):
                sync(worker, *args, **kwargs)

        copier._main.Worker._sync_git_index_executable_bit = sync_in_repositories


def render(
    dst: Path, *, unsafe: bool = False, vcs_ref: str | None = None, src: Path | None = None, **answers
) -> Path:
    """Render the template into ``dst`` with ``answers``, every other question at its default.
    Without ``src``, from the working tree as a folder (``working_tree``): the answers file then has
    no ``_commit``, and the same answers rendered again in this test process are a copy of the
    first render (the output depends on nothing else). Tests of what Copier records, or of
    updates, pass a git ``src`` and ``vcs_ref``."""
    import copier

    started, cpu = time.monotonic(), time.process_time() + _children_cpu()
    key = None if src else json.dumps({"unsafe": unsafe, **answers}, sort_keys=True, default=str)
    if key in _rendered:
        shutil.copytree(_rendered[key], dst, symlinks=True, dirs_exist_ok=True)
        _profile(
            "copier copy (a copy)", time.monotonic() - started, time.process_time() + _children_cpu() - cpu
        )
        return dst
    _lighter_copier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DirtyLocalWarning while the template is being edited
        copier.run_copy(
            str((src or working_tree()).resolve()),
            str(dst.resolve()),
            data=answers,
            defaults=True,
            vcs_ref=vcs_ref,
            quiet=True,
            unsafe=unsafe,
        )
    if key is not None:
        _rendered[key] = working_tree().parent / "renders" / str(len(_rendered))
        shutil.copytree(dst, _rendered[key], symlinks=True)
    _profile("copier copy", time.monotonic() - started, time.process_time() + _children_cpu() - cpu)
    return dst


def lint(root: Path) -> None:
    """The generated project's own `make lint` (ruff check, ruff format --check), with this
    environment's ruff: fails with what ruff says."""
    ruff = str(Path(sys.executable).with_name("ruff"))
    for command in ([ruff, "check", "--no-cache", "."], [ruff, "format", "--check", "--no-cache", "."]):
        done = subprocess.run(command, cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, f"{root.name}: ruff {' '.join(command[1:])}\n{done.stdout[-3000:]}"


def write_codeowners(root: Path) -> str:
    """`make roles` in a rendered project without its environment: .github/CODEOWNERS written
    from business/roles.yaml by the project's own module (it needs only PyYAML and pydantic,
    which this environment has). Returns the file's text."""
    package = next(p.name for p in (root / "src").iterdir() if (p / "business" / "roles.py").is_file())
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "PROJECT_ROOT": str(root)}
    subprocess.run(
        [sys.executable, "-m", package, "roles"], cwd=root, env=env, check=True, capture_output=True
    )
    return (root / ".github/CODEOWNERS").read_text(encoding="utf-8")


def files_of(root: Path) -> set[str]:
    """Relative paths of every file under ``root``, the project's own ``.git`` excluded."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.fixture(scope="session")
def shared_venv(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-env") / "venv"


@pytest.fixture(scope="session")
def project_env(shared_venv) -> dict[str, str]:
    """Environment for commands run in generated projects (see the module docstring)."""
    drop = (
        "PYTHONDONTWRITEBYTECODE",
        "VIRTUAL_ENV",
        "MLFLOW_TRACKING_URI",
        "PROJECT_ROOT",
        "PYTEST_ADDOPTS",
        # When the suite itself runs under make (.ci/run), a nested make would print "Entering directory" lines.
        "MAKELEVEL",
        "MAKEFLAGS",
        "MFLAGS",
        "MAKEOVERRIDES",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(OFFLINE)
    env.update(GIT_IDENTITY)
    env.update(
        UV_PROJECT_ENVIRONMENT=str(shared_venv),
        PATH=f"{Path(UV).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    # Torch on 2 shared cores: one thread (the projects' default is one per core).
    env.setdefault("TORCH_THREADS", "1")
    # The CSV test serves data on 127.0.0.1: never through a proxy.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1", "localhost"]))
    env.update(NO_PROXY=no_proxy, no_proxy=no_proxy)
    return env


@pytest.fixture(scope="session")
def llm_env(project_env, tmp_path_factory) -> dict[str, str]:
    """``project_env`` for llmops projects: their own shared environment (the two profiles'
    dependencies differ, and `uv sync` makes an environment exactly one project's), offline."""
    from .torch_index import local_index

    work = tmp_path_factory.mktemp("llm-env")
    return {
        **project_env,
        **local_index(work),
        "UV_PROJECT_ENVIRONMENT": str(work / "venv"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


@pytest.fixture
def git_identity(monkeypatch):
    """For in-process copier calls that commit (copier update)."""
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)


def table_rows(root: Path, env: dict[str, str], table: str = "data/prepared/test.parquet") -> list[dict]:
    """The rows of a table a generated project wrote (its stages pass Parquet), read in the
    project's own environment, as JSON records (missing values as None)."""
    read = f"pq.read_table({table!r}, use_threads=False).to_pandas(use_threads=False)"  # see data/table.py
    script = f"import sys, pyarrow.parquet as pq; sys.stdout.write({read}.to_json(orient='records'))"
    return json.loads(run(["uv", "run", "--frozen", "python", "-c", script], root, env).stdout)


def run(
    cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``cmd``; unless ``ok`` is False, fail the test with its output when it fails."""
    started, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    _profile(" ".join(map(str, cmd)), time.monotonic() - started, _children_cpu() - cpu)
    if ok and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({done.returncode}) in {cwd}:\n"
            f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}"
        )
    return done


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    merged = {**os.environ, **GIT_IDENTITY, **(env or {})}
    return run(["git", *args], cwd, merged).stdout


def registry(root: Path) -> dict:
    """Registered models, versions, aliases and gate tags, read straight from the sqlite store."""
    with closing(sqlite3.connect(root / "mlflow.db")) as db:
        models = [name for (name,) in db.execute("SELECT name FROM registered_models ORDER BY name")]
        versions = db.execute("SELECT name, version FROM model_versions ORDER BY name, version").fetchall()
        aliases = {
            (name, alias): version
            for name, alias, version in db.execute(
                "SELECT name, alias, version FROM registered_model_aliases"
            ).fetchall()
        }
        gates = dict(
            db.execute("SELECT version, value FROM model_version_tags WHERE key = 'quality_gate'").fetchall()
        )
    return {"models": models, "versions": versions, "aliases": aliases, "gates": gates}


def make_setup(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`make setup` in ``root``, resolving from uv's cache first (``UV_OFFLINE``), then, when the cache
    lacks something, from the index: the suite's projects need the same packages, and asking the
    index again costs seconds per project (3.5 s against 0.2 s for the lock, measured here)."""
    offline = run(["make", "setup"], root, {**env, "UV_OFFLINE": "1"}, ok=False)
    return offline if offline.returncode == 0 else run(["make", "setup"], root, env)


def built_project(dst: Path, env: dict[str, str], **answers) -> Path:
    """Render with ``answers``, `make setup`, commit, `make repro`, commit: a project as a user has it
    after the README's first commands. For module-scoped fixtures (15 to 60 s each). The commits
    skip the project's hooks, which test_lifecycle.py, test_csv_shapes.py and the update tests run."""
    root = render(dst, **answers)
    make_setup(root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", "Generated from the template"], root, env)
    run(["make", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "--quiet", "--no-verify", "-m", "Run the pipeline"], root, env)
    return root


@pytest.fixture(scope="session")
def default_built(tmp_path_factory, project_env) -> Path:
    """One project with the default answers, built as above once per test worker, for the modules
    that only need such a project: test_serving, test_container and test_ci_gate (one group, see
    SAME_WORKER). They put back what they change, except test_ci_gate's last test, which leaves a
    weaker model behind: that module runs last of the three (RUNS_LAST)."""
    return built_project(tmp_path_factory.mktemp("default") / "my-ml-project", project_env)


# Parallel runs (pytest-xdist, `make test` runs `-n auto`): the tests that share a module-scoped
# project stay on one worker, so no project is built twice (one group per module, one per CSV
# shape in test_csv_shapes), and the groups that take longest are handed out first, so the workers
# finish together. The llmops modules share one group: each worker that runs one of them builds
# the llmops environment (torch and its bytecode), which costs more than the parallelism gains.
# The quick in-process tests of test_questions come last, one group per test, so that both
# workers share the end of the run instead of one waiting for the other.
# (pytest 9.2 no longer lets xdist's own `xdist_group` marks reach the scheduler: the grouping is
# done here, from the test ids.)
SLOWEST_FIRST = (  # groups, by measured time (bench/suite_profile.py, 2026-12-08: seconds on one worker)
    "test_llmops",  # 390, with test_llm_variants
    "test_make_update",  # 153
    "test_serving",  # 139, with test_container and test_ci_gate
    "test_lifecycle",  # 96
    "test_cluster",  # 85
    "test_update",  # 82
    "test_csv_shapes",  # 3 x 58, one group per shape
    "test_monitoring",  # 36
    "test_tracking_server",  # 32
    "test_workflows",  # 27
    "test_maturity",  # 22
    "test_render",  # 17
    "test_cookiecutter",
    "test_docs",
    "test_releases",
    "test_questions",
)
GROUPED_BY_PARAMETER = {"test_csv_shapes"}  # its project fixture is module-scoped and parametrised
ONE_GROUP_PER_TEST = {"test_questions"}  # no module-scoped fixture: nothing is built twice
SAME_WORKER = {
    "test_llm_variants": "test_llmops",  # llm_env
    "test_real_models": "test_llmops",
    "test_container": "test_serving",  # default_built
    "test_ci_gate": "test_serving",
}
RUNS_LAST = {"test_ci_gate"}  # within its group


def module_of(nodeid: str) -> str:
    """``tests/test_x.py::test_y[p-q]`` -> ``test_x``."""
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


def group_of(nodeid: str) -> str:
    """``tests/test_x.py::test_y[p-q]`` -> ``test_x``, or ``test_x[p]`` for GROUPED_BY_PARAMETER, or
    the module SAME_WORKER names, or the test id itself for ONE_GROUP_PER_TEST."""
    module = module_of(nodeid)
    if module in ONE_GROUP_PER_TEST:
        return nodeid
    if module in GROUPED_BY_PARAMETER and nodeid.endswith("]"):
        return f"{module}[{nodeid.rsplit('[', 1)[1][:-1].split('-', 1)[0]}]"
    return SAME_WORKER.get(module, module)


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByProject(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    config.option.loadscopereorder = False  # keep SLOWEST_FIRST, not "most tests first"
    return ByProject(config, log)


# The tiers: a test that runs commands in a generated project (its environment fixtures) is `slow`
# like those marked by hand; `make test-fast` runs the rest (renders, answers, file sets, workflows).
BUILDS = {"project_env", "llm_env"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if BUILDS & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    rank = {name: index for index, name in enumerate(SLOWEST_FIRST)}

    def order(item) -> tuple[int, bool]:
        module = module_of(item.nodeid)
        return rank.get(SAME_WORKER.get(module, module), len(rank)), module in RUNS_LAST

    # Stable: within a module, pytest's order (grouped by fixture parameter) is kept.
    items.sort(key=order)


# A service under test: `make serve` (or another command) on a free port, until stopped.
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_healthy(url: str, timeout: float, exited=lambda: None, output=lambda: "") -> None:
    """Poll ``url`` until it answers 200; fail with ``output()`` when ``exited()`` says the server
    stopped (it returns its exit code) or when ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = exited()
        if code is not None:
            raise AssertionError(f"the server exited ({code}):\n{output()}")
        try:
            if http(url)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"no answer from {url} within {timeout} s:\n{output()}")


class RunningService:
    """`make serve PORT=<free port>` in ``root``, until stopped."""

    def __init__(self, root: Path, env: dict[str, str], command: list[str] | None = None, **extra_env: str):
        """``command`` (default: the serve command above) is run with ``{port}`` filled in."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root.parent / f"serve-{self.port}.log"
        command = command or ["make", "serve", "PORT={port}"]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [part.format(port=self.port) for part in command],
                cwd=root,
                env={**env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float = 90) -> RunningService:
        wait_healthy(self.url + "/health", timeout, self.process.poll, self.output)
        return self

    def output(self) -> str:
        return self.log.read_text()[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
