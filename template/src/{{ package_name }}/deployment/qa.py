"""Deployment QA in the test environment: check a running service end to end.

``qa --url URL`` runs, against the service at URL and the pipeline's held-out data:
(a) online requests: /health answers, a few held-out rows get one prediction each;
(b) malformed requests (missing or unknown column, wrong type, empty list, no ``instances``,
not JSON) get a 4xx answer: a 2xx or a 5xx fails;
(c) the load test (``loadtest`` in params.yaml) against ``service`` in business/kpis.yaml;
(d) the responsible-AI check (``fairness`` in business/kpis.yaml) when it is configured;
(e) batch scoring of the held-out file (the ``score`` command), which must agree with the service.
Writes ``paths.qa`` (and a markdown table to the GitHub job summary); fails listing every failed check.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_kpis, load_params, path
from ..errors import GateError
from ..gates import Kpis
from ..serving.qa import check as _check
from ..serving.qa import conclude, new_report, to_markdown
from . import loadtest

ONLINE_ROWS = 5


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def check_online(client: loadtest.Client, rows: list[dict[str, Any]]) -> tuple[list[dict], list | None]:
    """/health, then one request with a few held-out rows: ``(checks, predictions)``."""
    status, body = client.request("GET", "/health")
    health = _json(body) or {}
    checks = [
        _check(
            "health",
            status == 200 and health.get("status") == "ok",
            f"HTTP {status}, model {health.get('model', '?')}",
        )
    ]
    sample = rows[:ONLINE_ROWS]
    status, body = client.post_json("/predict", {"instances": sample})
    answer = _json(body) or {}
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    ok = 200 <= status < 300 and isinstance(predictions, list) and len(predictions) == len(sample)
    detail = f"HTTP {status}, {len(predictions) if isinstance(predictions, list) else 'no'} predictions"
    if "probabilities" in answer:
        ok = ok and len(answer["probabilities"]) == len(sample)
        detail += " with probabilities"
    checks.append(_check(f"predict {len(sample)} held-out rows", ok, detail + f" for {len(sample)} rows"))
    return checks, predictions if ok else None


def malformed_requests(
    row: dict[str, Any], required: list[str] | None = None
) -> dict[str, tuple[bytes, str]]:
    """Requests the service must refuse with a 4xx: name -> (body, content type). ``required``: the
    model's input columns (default: every column of ``row``); the others may be left out."""
    required = [c for c in (required or list(row)) if c in row] or list(row)
    first = required[0]
    numeric = next(
        (k for k in required if isinstance(row[k], int | float) and not isinstance(row[k], bool)), None
    )
    wrong = {**row, numeric: "not a number"} if numeric else {**row, first: {"nested": "object"}}
    missing = {k: v for k, v in row.items() if k != first}

    def encode(payload: Any) -> tuple[bytes, str]:
        return json.dumps(payload).encode(), "application/json"

    return {
        f"missing column {first}": encode({"instances": [missing]}),
        "unknown column": encode({"instances": [{**row, "not_a_model_column": 1}]}),
        f"wrong type in {numeric or first}": encode({"instances": [wrong]}),
        "empty list": encode({"instances": []}),
        "no instances key": encode({"rows": [row]}),
        "not JSON": (b"this is not json", "application/json"),
    }


def check_malformed(
    client: loadtest.Client, row: dict[str, Any], required: list[str] | None = None
) -> list[dict[str, Any]]:
    checks = []
    for name, (body, content_type) in malformed_requests(row, required).items():
        status, answer = client.request("POST", "/predict", body, content_type)
        message = answer.decode("utf-8", "replace").strip().replace("\n", " ")
        checks.append(
            _check(
                f"malformed: {name}",
                400 <= status < 500,
                f"HTTP {status} (want 4xx): {message[:120]}",
            )
        )
    return checks


def check_load(url: str, rows, params: dict[str, Any], kpis: Kpis) -> tuple[dict, dict]:
    settings = params.get("loadtest") or {}
    result = loadtest.load_test(
        url, rows, kpis, int(settings.get("requests", 400)), int(settings.get("concurrency", 4))
    )
    limits = ", ".join(f"{c['metric']} {c['value']} (max {c.get('max', '-')})" for c in result["checks"])
    failures = f"; failures: {result['failures']}" if result["failures"] else ""
    detail = f"{loadtest.describe(result)}; limits: {limits or 'none configured'}{failures}"
    return _check("load test", result["passed"], detail), result


def check_fairness(params: dict[str, Any], kpis: Kpis) -> tuple[dict, dict]:
    from . import fairness

    result = fairness.run(params, kpis)
    if not result.get("configured"):
        return _check("responsible AI", True, result["message"]), result
    failed = fairness.failures(result)
    differences = ", ".join(f"{m} {v}" for m, v in result["difference"].items() if v is not None)
    detail = "; ".join(failed) if failed else f"groups of {result['sensitive_feature']}: {differences}"
    return _check("responsible AI", not failed, detail), result


def check_batch(params: dict[str, Any], online: list | None) -> dict[str, Any]:
    """Score the held-out file with the batch scorer (the ``score`` command): every row gets a
    prediction, and the rows sent online get the service's predictions."""
    from ..data.table import read_table
    from .batch import score

    source = path(params, "test")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            scored = score(source, Path(scratch) / "scores.csv", params)
    except (GateError, OSError, ValueError) as error:
        return _check("batch scoring", False, f"{type(error).__name__}: {error}")
    rows = len(read_table(source))
    ok = len(scored) == rows and scored["prediction"].notna().all()
    detail = f"{len(scored)} of {rows} held-out rows scored"
    if ok and online:
        batch = scored["prediction"].head(len(online)).tolist()
        ok = all(_same(a, b) for a, b in zip(batch, online, strict=True))
        detail += "; agrees with the service" if ok else f"; differs from the service: {batch} vs {online}"
    return _check("batch scoring", ok, detail)


def _same(a, b) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    return str(a) == str(b)


def model_columns(params: dict[str, Any]) -> list[str] | None:
    """The model's input columns (from the column roles), None when they are not known."""
    from ..data import roles as column_roles

    try:
        return column_roles.features(column_roles.load(params))
    except column_roles.RolesError:
        return None


@dataclass
class Run:
    """What the checks share: the service, the settings, the held-out rows and the report so far."""

    url: str
    params: dict[str, Any]
    kpis: Kpis
    rows: list[dict[str, Any]]
    client: loadtest.Client
    report: dict[str, Any]
    online: list | None = None


def _online(run: Run) -> list[dict[str, Any]]:
    checks, run.online = check_online(run.client, run.rows)
    return checks


def _malformed(run: Run) -> list[dict[str, Any]]:
    return check_malformed(run.client, run.rows[0], model_columns(run.params))


def _load(run: Run) -> list[dict[str, Any]]:
    check, run.report["loadtest"] = check_load(run.url, run.rows, run.params, run.kpis)
    return [check]


def _fairness(run: Run) -> list[dict[str, Any]]:
    check, run.report["fairness"] = check_fairness(run.params, run.kpis)
    return [check]


def _batch(run: Run) -> list[dict[str, Any]]:
    return [check_batch(run.params, run.online)]


# QA is these lists: checks that talk to the service (an unreachable service stops them with one
# failed check), then checks of the deployment's artefacts. A profile's QA passes its own lists.
SERVICE_CHECKS: list[Callable[[Run], list[dict[str, Any]]]] = [_online, _malformed, _load]
OFFLINE_CHECKS: list[Callable[[Run], list[dict[str, Any]]]] = [_fairness, _batch]


def run_qa(
    url: str,
    params: dict[str, Any],
    kpis: Kpis,
    batch: bool = True,
    service_checks=None,
    offline_checks=None,
) -> dict[str, Any]:
    """Every check; the report (``passed`` says whether all passed). Raises nothing for a failed check."""
    import http.client

    rows = loadtest.held_out_rows(params)
    if not rows:
        raise GateError(f"{params['paths']['test']} has no rows: run the pipeline first (make repro)")
    report: dict[str, Any] = new_report(url)
    checks: list[dict[str, Any]] = []
    run = Run(url, params, kpis, rows, loadtest.Client(url), report)
    try:
        for step in SERVICE_CHECKS if service_checks is None else service_checks:
            checks += step(run)
    except (OSError, http.client.HTTPException) as error:
        checks.append(_check("service reachable", False, f"{url}: {type(error).__name__}: {error}"))
    finally:
        run.client.close()
    for step in OFFLINE_CHECKS if offline_checks is None else offline_checks:
        if step is _batch and not batch:
            continue
        checks += step(run)
    report["checks"] = checks
    report["passed"] = all(c["passed"] for c in checks)
    return report


def main(argv: list[str] | None = None) -> int:
    from ..serving.qa import options as qa_options

    params = load_params()
    options = qa_options(__doc__, params)
    options.add_argument("--no-batch", action="store_true", help="skip the batch-scoring check")
    args = options.parse_args(argv)
    kpis = load_kpis()
    report = run_qa(args.url.rstrip("/"), params, kpis, batch=not args.no_batch)
    from . import fairness

    table = to_markdown(report)
    if report.get("fairness", {}).get("configured"):
        table += "\n" + fairness.to_markdown(report["fairness"])
    return conclude(report, params, table)
