"""A repository as the rules read it: its files (those git tracks, or every file outside the
usual build and environment folders when it is not a git repository), their text, and its GitHub
Actions workflows. Every match is a ``Hit``: the file, the line and the line's text, so that each
finding cites where it was seen."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIPPED = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".mypy_cache", "site-packages"}
TEXT = {
    ".py",
    ".yaml",
    ".yml",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".md",
    ".json",
    ".jsonl",
    ".sh",
    ".j2",
    ".jinja",
    ".prompt",
    ".tf",
    ".lock",
    ".csv",
    ".mk",
    "",
}
MAX_BYTES = 1_000_000  # larger files are data, not evidence
# The assessment's own files (in its package, or shipped in a project) hold every pattern it
# looks for: they are never read as the project's evidence.
OWN = frozenset(
    path.read_text(encoding="utf-8")
    for path in Path(__file__).parent.iterdir()
    if path.suffix in (".py", ".json")
)
TESTS = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")


@dataclass(frozen=True)
class Hit:
    file: str
    line: int
    text: str

    def cite(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Workflow:
    file: str
    text: str
    data: dict[str, Any]

    @property
    def triggers(self) -> set[str]:
        on = self.data.get("on", self.data.get(True))  # YAML 1.1 reads a bare `on` as True
        if isinstance(on, str):
            return {on}
        return set(on) if isinstance(on, list | dict) else set()

    def runs(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """``(job name, job, step)`` for every step of every job."""
        found = []
        for name, job in (self.data.get("jobs") or {}).items():
            if isinstance(job, dict):
                for step in job.get("steps") or []:
                    if isinstance(step, dict):
                        found.append((name, job, step))
        return found


@dataclass
class Repo:
    root: Path
    files: list[str] = field(default_factory=list)
    _texts: dict[str, str | None] = field(default_factory=dict)
    _workflows: list[Workflow] | None = None

    @classmethod
    def open(cls, root: str | Path) -> Repo:
        root = Path(root).resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder")
        return cls(root, _listed(root))

    def matching(self, *patterns: str, tests: bool | None = None) -> list[str]:
        """Files whose path matches one of the glob ``patterns`` (``tests``: only test files,
        only other files, or both)."""
        found = [f for f in self.files if any(fnmatch.fnmatch(f, p) for p in patterns)]
        if tests is not None:
            found = [f for f in found if bool(TESTS.search(f)) == tests]
        return found

    def text(self, file: str) -> str | None:
        if file not in self._texts:
            path = self.root / file
            try:
                text = (
                    path.read_text(encoding="utf-8", errors="replace")
                    if path.suffix in TEXT and path.stat().st_size <= MAX_BYTES
                    else None
                )
            except OSError:
                text = None
            self._texts[file] = None if text in OWN else text
        return self._texts[file]

    def grep(self, pattern: str, *globs: str, tests: bool | None = False, flags: int = 0) -> list[Hit]:
        """Lines matching ``pattern`` in the files of ``globs`` (by default, code that is not a test)."""
        regex = re.compile(pattern, flags)
        hits = []
        for file in self.matching(*(globs or ("*.py",)), tests=tests):
            text = self.text(file)
            if text is None:
                continue
            for number, line in enumerate(text.splitlines(), start=1):
                if regex.search(line):
                    hits.append(Hit(file, number, line.strip()[:160]))
        return hits

    def first_line(self, file: str, pattern: str) -> Hit | None:
        text = self.text(file) or ""
        for number, line in enumerate(text.splitlines(), start=1):
            if re.search(pattern, line):
                return Hit(file, number, line.strip()[:160])
        return None

    def workflows(self) -> list[Workflow]:
        """The GitHub Actions workflows, parsed once (every check reads them)."""
        if self._workflows is None:
            self._workflows = self._parse_workflows()
        return self._workflows

    def _parse_workflows(self) -> list[Workflow]:
        import yaml

        found = []
        for file in self.matching(".github/workflows/*.yml", ".github/workflows/*.yaml"):
            text = self.text(file) or ""
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(data, dict):
                found.append(Workflow(file, text, data))
        return found


def _without_this_tool(names: list[str]) -> list[str]:
    """The files less a copy of this tool vendored in the repository (a folder holding its
    evidence.py, levels.py and repo.py): its rules' patterns would otherwise match themselves."""
    present = set(names)
    own = {
        n.rsplit("/", 1)[0]
        for n in names
        if n.endswith("/evidence.py") and {f"{n[:-11]}levels.py", f"{n[:-11]}repo.py"} <= present
    }
    return [n for n in names if ("/" in n and n.rsplit("/", 1)[0] in own) is False]


def _listed(root: Path) -> list[str]:
    return _without_this_tool(_all_listed(root))


def _all_listed(root: Path) -> list[str]:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        )
        names = [n for n in done.stdout.decode("utf-8", "replace").split("\0") if n]
        if names:
            return sorted(n for n in names if not SKIPPED.intersection(n.split("/")) and (root / n).is_file())
    except (OSError, subprocess.CalledProcessError):
        pass  # not a git repository (or no git): every file
    found = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if path.is_file() and not SKIPPED.intersection(parts):
            found.append("/".join(parts))
    return sorted(found)
