"""Copier task, run after `copier copy --trust`: make the new project ready to commit.

Each step is optional and skipped with a note when it cannot run, so a missing tool
never fails the copy. The project works the same without this script (`make setup`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys


def run(*args: str) -> bool:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  skipped `{' '.join(args)}`: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return done.returncode == 0


def main() -> int:
    if not run("git", "rev-parse", "--git-dir"):
        run("git", "init", "--quiet")
    if shutil.which("uv"):
        run("uv", "lock", "--quiet")
    else:
        print("  uv not found: `make setup` will create uv.lock")
    identity = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True).stdout.strip()
    if identity and run("git", "add", "--all"):
        run("git", "commit", "--quiet", "--no-verify", "-m", "Initial commit from the MLOps lifecycle template")
    elif not identity:
        print("  no git identity configured: commit the project yourself")
    return 0


if __name__ == "__main__":
    sys.exit(main())
