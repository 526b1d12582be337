"""Deployment QA, the part every profile shares: a check is one line of the report, a report is
published in one way (``paths.qa``, the console, the GitHub job summary), and QA fails listing
every failed check. Each profile's QA (``deployment/qa.py``, ``chat/qa.py``) is its list of checks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import reports
from ..config import path
from ..errors import GateError


def options(doc: str | None, params: dict[str, Any]):
    """The ``qa`` command's parser: ``--url``, the running service (default: ``serving`` in params.yaml)."""
    from ..cli import parser

    serving = params.get("serving") or {}
    found = parser(doc, "qa")
    found.add_argument(
        "--url",
        default=f"http://{serving.get('host', '127.0.0.1')}:{serving.get('port', 8000)}",
        help="the running service (default: serving.host and serving.port in params.yaml)",
    )
    return found


def check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "passed": bool(passed), "detail": detail}


def new_report(url: str) -> dict[str, Any]:
    return {"url": url, "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"### Deployment QA of `{report['url']}`",
        "",
        "| check | result | detail |",
        "|---|---|---|",
    ]
    for item in report["checks"]:
        detail = item["detail"].replace("|", "\\|")
        lines.append(f"| {item['check']} | {'pass' if item['passed'] else '**FAIL**'} | {detail} |")
    load = report.get("loadtest")
    if load:
        latency = load["latency_ms"]
        lines += [
            "",
            "| load test | p50 ms | p95 ms | p99 ms | req/s | error rate |",
            "|---|---:|---:|---:|---:|---:|",
            f"| {load['requests']} requests, concurrency {load['concurrency']} | {latency['p50']} "
            f"| {latency['p95']} | {latency['p99']} | {load['requests_per_s']} | {load['error_rate']:.2%} |",
        ]
    return "\n".join(lines) + "\n"


def conclude(report: dict[str, Any], params: dict[str, Any], table: str | None = None) -> int:
    """Publish the report; raise GateError listing every failed check, or say it passed."""
    reports.publish(path(params, "qa"), report, table if table is not None else to_markdown(report))
    failed = [c for c in report["checks"] if not c["passed"]]
    if failed:
        lines = "\n".join(f"  - {c['check']}: {c['detail']}" for c in failed)
        raise GateError(f"{len(failed)} of {len(report['checks'])} QA checks failed:\n{lines}")
    print(f"QA passed ({len(report['checks'])} checks); report written to {params['paths']['qa']}")
    return 0
