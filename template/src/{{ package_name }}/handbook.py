"""The project's handbook: its phase READMEs and decision records as one site (MkDocs, Material).

    python -m <package>.handbook [--site-dir DIR]      # make docs: .site/index.html

Every README.md of the project (the project's own first, then each phase folder's in lifecycle
order) and the decision records of ``business/`` become the pages of a site built into
``.site/`` (the build's own files in ``.handbook/``; both are git-ignored). A relative link to
another page stays a link between pages; a link to a file that is not a page (code, settings)
points at the file in the repository on GitHub (``github_owner``/``github_repo`` of
``.copier-answers.yml``). Built strict: a link to a missing file, or a missing anchor, is an error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Lifecycle order of the folders whose README is a page (the rest follow, alphabetically).
ORDER = (
    "business",
    "data",
    "src/*/corpus",
    "src/*/data",
    "infra",
    "src/*/training",
    "src/*/llm",
    "prompts",
    "guardrails",
    "src/*/guardrails",
    "src/*/tools",
    "src/*/registry",
    "src/*/ci",
    ".github/workflows",
    "src/*/deployment",
    "src/*/chat",
    "src/*/serving",
    "src/*/monitoring",
    "src/*/governance",
    "src/*/cluster",
)
SKIPPED = {".git", ".venv", ".handbook", ".site", "node_modules", "mlruns", "models", "reports", "logs"}
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def pages(root: Path) -> list[Path]:
    """The files that become pages, in order: README.md, the phase READMEs, business/*.md."""
    found = [
        p
        for p in root.rglob("README.md")
        if p.parent != root
        and not SKIPPED.intersection(p.relative_to(root).parts)
        and not any(part.startswith(".") and part != ".github" for part in p.relative_to(root).parts)
    ]

    def rank(path: Path) -> tuple[int, str]:
        folder = path.parent.relative_to(root).as_posix()
        for number, pattern in enumerate(ORDER):
            if Path(folder).match(pattern) and folder.count("/") == pattern.count("/"):
                return number, folder
        return len(ORDER), folder

    records = sorted(p for p in (root / "business").glob("*.md") if p.name != "README.md")
    return [root / "README.md", *sorted(found, key=rank), *records]


def page_name(root: Path, file: Path) -> str:
    """A page's file name in the site: its path, folders joined by dashes."""
    relative = file.relative_to(root)
    if relative == Path("README.md"):
        return "index.md"
    parts = [p.lstrip(".") for p in relative.parent.parts]
    name = "-".join(parts) if file.name == "README.md" else "-".join([*parts, relative.stem])
    return f"{name}.md"


def repository(root: Path) -> str:
    """The project's GitHub address, from its answers."""
    import yaml

    answers = yaml.safe_load((root / ".copier-answers.yml").read_text(encoding="utf-8")) or {}
    return (
        f"https://github.com/{answers.get('github_owner', 'owner')}/{answers.get('github_repo', root.name)}"
    )


def rewrite(text: str, source: Path, root: Path, named: dict[Path, str], remote: str) -> str:
    """``text``'s relative links: to another page, that page; to any other file, the repository."""

    def link(match: re.Match) -> str:
        target, anchor = match.group(2), match.group(3) or ""
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
            return match.group(0)  # http(s), mailto, an absolute path: as written
        resolved = (source.parent / target).resolve()
        if resolved.is_dir() and (resolved / "README.md") in named:  # a folder with a page: its page
            resolved = resolved / "README.md"
        if resolved in named:
            return f"{match.group(1)}{named[resolved]}{anchor}{match.group(4)}"
        if not resolved.exists():
            return match.group(0)  # a missing file: left for the strict build to report
        try:
            inside = resolved.relative_to(root).as_posix()
        except ValueError:
            return match.group(0)
        kind = "tree" if resolved.is_dir() else "blob"
        return f"{match.group(1)}{remote}/{kind}/main/{inside}{anchor}{match.group(4)}"

    return LINK.sub(link, text)


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """Write the pages and the configuration into ``.handbook/`` and build the site strict."""
    import yaml

    work = root / ".handbook"
    shutil.rmtree(work, ignore_errors=True)
    (work / "pages").mkdir(parents=True)
    files = pages(root)
    named = {f.resolve(): page_name(root, f) for f in files}
    remote = repository(root)
    nav = []
    for file in files:
        text = rewrite(file.read_text(encoding="utf-8"), file, root, named, remote)
        (work / "pages" / named[file.resolve()]).write_text(text, encoding="utf-8")
        title = re.search(r"^#\s+(.+)$", text, re.M)
        nav.append({(title.group(1).strip() if title else file.parent.name): named[file.resolve()]})
    config = {
        "site_name": next(iter(nav[0])),  # the project README's title
        "docs_dir": "pages",
        "site_dir": str(site.resolve()),
        "strict": True,
        "use_directory_urls": False,
        "theme": {"name": "material", "font": False, "features": ["navigation.sections"]},
        "markdown_extensions": ["admonition", "tables", {"toc": {"permalink": True}}, "pymdownx.superfences"],
        "validation": {"links": {"not_found": "warn", "anchors": "warn", "unrecognized_links": "warn"}},
        "nav": nav,
    }
    (work / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--config-file", str(work / "mkdocs.yml")],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .config import project_root

    options = argparse.ArgumentParser(
        prog="python -m <package>.handbook", description=__doc__.splitlines()[0]
    )
    options.add_argument("--site-dir", type=Path, default=None, help="where the site goes (default: .site)")
    args = options.parse_args(argv)
    root = project_root()
    site = args.site_dir or root / ".site"
    done = build(root, site)
    if done.returncode != 0:
        print(f"docs FAILED:\n{done.stdout}{done.stderr}".rstrip(), file=sys.stderr)
        return 1
    print(f"handbook: {len(pages(root))} pages -> {site}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
