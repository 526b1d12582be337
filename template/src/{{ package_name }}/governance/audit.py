"""Governance: verify the audit trail's chain, or export its records for an auditor.

    python -m <package> audit verify
    python -m <package> audit export [--since YYYY-MM-DD] [--until YYYY-MM-DD]
                                     [--request-id ID ...] [--out FILE]

``verify`` walks the whole trail (``paths.audit``, ``AUDIT_DIR`` overrides; ``trail.py``) and fails,
naming the file and line, at the first line that was changed, removed, moved or inserted.
``export`` writes the lines of a date range (inclusive, UTC days) or of the given request ids as
JSON lines (``--out``; default: standard output), each with its place in the chain (``seq``,
``prev``, ``hash``) so the auditor can check it, after checking the chain itself: an export of a
trail that does not verify fails.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

from ..config import load_params, path


def folder(params: dict[str, Any], root: Path | None = None) -> Path:
    configured = os.environ.get("AUDIT_DIR")
    return Path(configured) if configured else path(params, "audit", root)


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..errors import GateError
    from . import trail

    options = parser(__doc__, "audit")
    commands = options.add_subparsers(dest="action", required=True)
    commands.add_parser("verify", help="check every line's place in the chain")
    export = commands.add_parser("export", help="the records of a date range or of request ids")
    export.add_argument("--since", type=date.fromisoformat, help="first UTC day (YYYY-MM-DD)")
    export.add_argument("--until", type=date.fromisoformat, help="last UTC day (YYYY-MM-DD)")
    export.add_argument("--request-id", action="append", default=[], help="a request id (repeat for more)")
    export.add_argument("--out", type=Path, help="a file for the JSON lines (default: standard output)")
    args = options.parse_args(argv)
    where = folder(load_params())
    verdict = trail.verify(where)
    if not verdict.holds:
        raise GateError(f"the audit trail does not verify: {verdict.problem}")
    if args.action == "verify":
        print(f"audit trail verified: {verdict.lines} lines, each following the one before ({where})")
        return 0
    lines = trail.select(where, args.since, args.until, set(args.request_id) or None)
    missing = set(args.request_id) - {line["record"].get("request_id") for line in lines}
    if missing:
        raise GateError(f"no audit line for request id(s): {', '.join(sorted(missing))}")
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"exported {len(lines)} audit lines to {args.out} (the trail verified: {verdict.lines} lines)")
    else:
        sys.stdout.write(text)
    return 0
