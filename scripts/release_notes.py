"""Print the CHANGELOG.md section of one release: the notes of its GitHub release.

    python3 scripts/release_notes.py 0.3.0 > notes.md

Exits 2 when the version is not PEP 440 (tags are plain versions: `0.3.0`, `1.0.0rc1`) or when
CHANGELOG.md has no `## [VERSION] - YYYY-MM-DD` section for it. Standard library only: the release
workflow runs it before installing anything.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"
# PEP 440's canonical public versions (what the tags are): N(.N)*[{a|b|rc}N][.postN][.devN]
PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.M)


def sections(text: str) -> dict[str, tuple[str | None, str]]:
    """version -> (date, body) for every `## [...]` section, in file order."""
    found = list(HEADING.finditer(text))
    result = {}
    for match, following in zip(found, [*found[1:], None], strict=True):
        end = following.start() if following else len(text)
        result[match["version"]] = (match["date"], text[match.end() : end].strip() + "\n")
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    version = argv[0]
    if not PEP440.match(version):
        print(f"Tag releases with a PEP 440 version such as 0.4.0, not {version!r}.", file=sys.stderr)
        return 2
    found = sections(CHANGELOG.read_text())
    if version not in found or not found[version][0]:
        print(f"Add a section `## [{version}] - YYYY-MM-DD` to CHANGELOG.md first.", file=sys.stderr)
        return 2
    sys.stdout.write(found[version][1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
