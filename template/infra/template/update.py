"""Take a newer release of the project template and keep every edit of yours: `make update`.

    make update                        # the template's newest release
    make update REF=0.4.0              # another release (any tag or commit of the template)
    make update DATA="profile=llmops"  # change answers on the way (KEY=VALUE, space-separated)
    make update DATA="profile=llmops" KEEP="src/pkg/training/*"  # and keep files it would drop

In order, it:
1. stops unless the git tree is clean: commit or stash first (copier needs it to tell your
   edits from the template's); while conflicts of an earlier run remain, it lists them;
2. runs `copier update --defaults --conflict inline` (no --trust: the template has no tasks);
3. keeps your edits to files the release renamed or removed (or your new answers leave out):
   your changes to a renamed module are merged into its new place, a dropped file you had
   changed stays, and so does every dropped file matching a KEEP pattern; each is listed;
4. applies the release's migrations (infra/template/migrations.yaml): outputs no longer
   produced are removed;
5. lists every conflict with how to resolve it, and exits 1 while any remain.
`make update` then runs `make setup` (uv.lock and .venv from the new pyproject.toml) and
`make test`. After resolving conflicts, commit and run `make update` again: it finds nothing
newer, then syncs and tests.

--report FILE writes the summary as markdown (the pull request body of template-update.yml);
--allow-conflicts exits 0 with the conflicts listed (that workflow commits them for review).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ANSWERS = Path(".copier-answers.yml")
MIGRATIONS = Path("infra/template/migrations.yaml")
MARKER = "<<<<<<< "


def git(*args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def changed_paths() -> dict[str, str]:
    """What `git status` lists: path -> two-letter status (renames count as their new path)."""
    paths, entries = {}, iter(git("status", "--porcelain", "--untracked-files=all", "-z").split("\0"))
    for entry in entries:
        if len(entry) > 3:
            paths[entry[3:]] = entry[:2]
            if entry[0] in "RC":
                next(entries, None)  # the old path of a staged rename or copy
    return paths


def conflicts(paths: list[str]) -> list[tuple[str, str]]:
    """(file, how to resolve it) for every file with conflict markers and every `.rej` file."""
    found = []
    for path in sorted(paths):
        file = Path(path)
        if path.endswith(".rej"):
            found.append(
                (
                    path,
                    f"the template's change that did not apply to {path[:-4]}: apply it by hand, delete {path}",
                )
            )
        elif file.is_file() and has_markers(file):
            found.append(
                (path, "keep what you need from both sides of <<<<<<< ... >>>>>>>, then remove the markers")
            )
    return found


def has_markers(file: Path) -> bool:
    try:
        with file.open(encoding="utf-8", errors="ignore") as lines:
            return any(line.startswith(MARKER) for line in lines)
    except OSError:
        return False


def version_of(commit: str):
    """The PEP 440 release a `_commit` is at or after ("0.3.0", "0.3.0-2-gabc1234"), or None."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(commit.split("-")[0])
    except InvalidVersion:
        return None


def load_migrations() -> list[dict]:
    if not MIGRATIONS.is_file():
        return []
    entries = yaml.safe_load(MIGRATIONS.read_text()) or []
    if not isinstance(entries, list):
        raise SystemExit(f"{MIGRATIONS}: expected a list of releases, each with version, renamed and removed")
    return entries


def render_old(answers: dict, folder: Path) -> None:
    """The project as the old release rendered it, with the same answers: the base that tells the
    user's edits from the template's."""
    import copier

    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    copier.run_copy(
        answers["_src_path"],
        folder,
        data=data,
        vcs_ref=answers["_commit"],
        defaults=True,
        quiet=True,
        unsafe=False,
    )


def run_copier(ref: str | None, data: list[str]) -> None:
    command = [sys.executable, "-m", "copier", "update", "--defaults", "--conflict", "inline"]
    if ref:
        command += ["--vcs-ref", ref]
    for pair in data:
        command += ["--data", pair]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(
            "copier update failed (above); nothing was committed: `git status` shows what it changed"
        )


def keep_user_edits(
    answers: dict, deleted: list[str], renamed: dict[str, str], keep: list[str], notes: list[str]
) -> None:
    """Files the update deleted: restore the ones matching ``keep``, restore or merge the ones the
    user had changed."""
    from fnmatch import fnmatch

    for path in [path for path in deleted if any(fnmatch(path, pattern) for pattern in keep)]:
        git("checkout", "HEAD", "--", path)
        notes.append(f"kept `{path}` (KEEP)")
        deleted.remove(path)
    if not deleted:
        return
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "old"
        render_old(answers, base)
        for path in deleted:
            mine = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True).stdout
            old = base / path
            if old.is_file() and old.read_bytes() == mine:
                continue  # untouched by the user: the template's deletion stands
            target = renamed.get(path)
            if target and Path(target).is_file() and old.is_file():
                merge_into(target, old, mine, path, notes)
            else:
                git("checkout", "HEAD", "--", path)
                notes.append(
                    f"kept `{path}`: you had changed it and the release no longer has it (CHANGELOG.md says why)"
                )


def merge_into(target: str, old: Path, mine: bytes, path: str, notes: list[str]) -> None:
    """Three-way merge of the user's edits of ``path`` into the module's new place ``target``."""
    with tempfile.TemporaryDirectory() as folder:
        yours = Path(folder) / "yours"
        yours.write_bytes(mine)
        done = subprocess.run(
            [
                "git",
                "merge-file",
                "-L",
                f"{target} (template)",
                "-L",
                f"{path} (before)",
                "-L",
                f"{path} (your edits)",
                target,
                str(old),
                str(yours),
            ],
            capture_output=True,
        )
    if done.returncode < 0 or done.returncode > 127:
        raise SystemExit(f"git merge-file failed on {target}: {done.stderr.decode().strip()}")
    state = "with conflicts" if done.returncode else "cleanly"
    notes.append(f"merged your edits of `{path}` (renamed by the release) into `{target}`, {state}")


def remove_orphans(entries: list[dict], since, notes: list[str]) -> None:
    """Outputs and files the new release no longer produces."""
    for entry in entries:
        release = version_of(str(entry.get("version", "")))
        if since is not None and release is not None and release <= since:
            continue  # the project was generated at or after this release
        for path in entry.get("removed") or []:
            target = Path(path)
            if not (target.exists() or target.is_symlink()):
                continue
            if git("ls-files", "--", path).strip():
                git("rm", "-r", "--quiet", "--", path)
            elif target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
            notes.append(f"removed `{path}`: release {entry.get('version')} no longer produces it")


def report(
    old: str, new: str, data: list[str], changed: list[str], notes: list[str], found: list[tuple[str, str]]
) -> str:
    lines = [f"Template update: {old} -> {new}", ""]
    if data:
        lines += ["Answers changed: " + ", ".join(f"`{pair}`" for pair in data), ""]
    lines += [f"{len(changed)} files changed (`git status`, `git diff`):", ""]
    lines += [f"- `{path}`" for path in changed] or ["- none"]
    if notes:
        lines += ["", "Your edits and the release's migrations:", ""] + [f"- {note}" for note in notes]
    if found:
        lines += ["", f"{len(found)} conflicts to resolve before merging:", ""]
        lines += [f"- `{path}`: {how}" for path, how in found]
        lines += ["", "Then commit, and `make update` again: it syncs the environment and runs the tests."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--vcs-ref", help="the template release (tag or commit) to move to; default: the newest"
    )
    parser.add_argument("--data", action="append", default=[], metavar="KEY=VALUE", help="change an answer")
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep dropped files matching it (fnmatch)",
    )
    parser.add_argument("--report", type=Path, help="write the summary as markdown to this file")
    parser.add_argument("--allow-conflicts", action="store_true", help="exit 0 with conflicts listed")
    args = parser.parse_args(argv)

    if not ANSWERS.is_file():
        print(f"{ANSWERS} is missing: run this from the project's root folder", file=sys.stderr)
        return 2
    pending = changed_paths()
    if pending:
        found = conflicts(list(pending))
        if found:
            print(f"{len(found)} conflicts of the last update remain:", file=sys.stderr)
            for path, how in found:
                print(f"  {path}: {how}", file=sys.stderr)
            print("Then commit (git add -A && git commit) and run `make update` again.", file=sys.stderr)
            return 1
        print(
            "Commit or stash your changes first (git add -A && git commit -m ..., or git stash -u):"
            " the update tells your edits from the template's by the last commit.",
            file=sys.stderr,
        )
        return 2

    answers = yaml.safe_load(ANSWERS.read_text())
    old = str(answers.get("_commit", "?"))
    run_copier(args.vcs_ref, args.data)
    new = str(yaml.safe_load(ANSWERS.read_text()).get("_commit", "?"))

    status = changed_paths()
    migrations = load_migrations()
    renamed = {
        old_path: new_path
        for entry in migrations
        for old_path, new_path in (entry.get("renamed") or {}).items()
    }
    deleted = [path for path, code in status.items() if "D" in code]
    notes: list[str] = []
    if deleted:
        keep_user_edits(answers, deleted, renamed, args.keep, notes)
    remove_orphans(migrations, version_of(old), notes)

    changed = sorted(changed_paths())
    found = conflicts(changed)
    summary = report(old, new, args.data, changed, notes, found)
    if args.report:
        args.report.write_text(summary)
    print(summary if changed else f"Already at the template's {new}: nothing to update.")
    if found and not args.allow_conflicts:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
