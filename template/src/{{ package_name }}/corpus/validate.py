"""Data Preparation (text): the data contract and data privacy governance, before any model sees it.

Two checks, both written to ``paths.validation``; either failing stops the pipeline:

1. **The contract** (Great Expectations, ``contract`` in ``params.yaml``): every pair has a non-empty
   ``instruction``, ``answer`` and ``source``; their lengths (characters) are within bounds; no
   instruction appears twice; every ``source`` names a collected document; every document's length
   is within bounds and no document is an exact copy of another.
2. **Privacy** (``privacy.py``, ``privacy`` in ``params.yaml``): no personal data to ``block`` in
   the pairs or the documents. Every candidate goes to the report with its entity, document and
   line, masked value and verdict; the message gives the count per entity and the first few. If a
   value is not personal (a published support address, say), add it to the reviewed allow-list
   (``privacy.allow``); if the model may see it masked, set its entity to ``redact`` (``collect``
   then replaces each value by ``<ENTITY>``); say why in the commit.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .. import reports
from ..config import load_params, path, project_root
from ..errors import DataValidationError
from ..expectations import IN_SET, NOT_NULL, describe, run_suite
from .collect import read_jsonl

PAIR_FIELDS = ("instruction", "answer", "source")


def _between(column: str, limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "expect_column_value_lengths_to_be_between",
        "kwargs": {"column": column, "min_value": limits.get("min"), "max_value": limits.get("max")},
    }


def pair_suite(contract: dict[str, Any], sources: list[str]) -> dict[str, Any]:
    """The suite for the pairs: fields present and non-empty, lengths, unique instructions, known sources."""
    expectations: list[dict[str, Any]] = [
        {
            "type": "expect_table_columns_to_match_set",
            "kwargs": {"column_set": list(PAIR_FIELDS), "exact_match": False},
        }
    ]
    expectations += [{"type": NOT_NULL, "kwargs": {"column": f}} for f in PAIR_FIELDS]
    expectations += [
        _between("instruction", contract["instruction_chars"]),
        _between("answer", contract["answer_chars"]),
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "instruction"}},
        {"type": IN_SET, "kwargs": {"column": "source", "value_set": sources}},
    ]
    return {"name": "pairs", "expectations": expectations}


def document_suite(contract: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "documents",
        "expectations": [
            {"type": NOT_NULL, "kwargs": {"column": "text"}},
            _between("text", contract["document_chars"]),
            {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "sha256"}},
        ],
    }


PARALLEL_FROM_CHARS = 2_000_000  # text to review before the work is spread over the cores


def _scan_one(job) -> list[list[Any]]:
    from . import pii

    text, entities, min_score = job
    return [[f.entity, f.start, f.end, f.score, why] for f, why in pii.scan(text, entities, min_score)]


def privacy_review(documents, pairs, rules, cache_file=None) -> tuple[list[dict[str, Any]], int]:
    """Every candidate of personal data in the pairs and the documents, with where it is and its
    verdict (``privacy.py``); the values redacted by ``collect`` are counted, not shown. Only new
    and changed texts are scanned (the scans are kept in ``cache_file``, ``cache.py``), many of
    them on every core; the verdicts (the allow-list, the actions) are given afresh every run.
    Also returns how many texts were scanned."""
    from . import pii, privacy
    from .cache import Cache, digest, source_version
    from .collect import over_the_cores

    fields = [
        ("pairs", i, field, row.get(field))
        for i, row in enumerate(pairs)
        for field in ("instruction", "answer")
    ]
    fields += [("documents", i, "text", doc.get("text")) for i, doc in enumerate(documents)]
    fields = [f for f in fields if isinstance(f[3], str)]
    cache = Cache(cache_file)
    scanner = digest(source_version(pii), *sorted(rules.entities), repr(rules.min_score))
    keys = [digest(scanner, f[3]) for f in fields]
    todo = {key: f[3] for key, f in zip(keys, fields, strict=True) if cache.get(key) is None}
    jobs = [(text, rules.entities, rules.min_score) for text in todo.values()]
    scanned = over_the_cores(_scan_one, jobs, sum(len(t) for t in todo.values()) >= PARALLEL_FROM_CHARS)
    for key, items in zip(todo, scanned, strict=True):
        cache.put(key, {"found": items})
    cache.save()
    found: list[dict[str, Any]] = []
    for (where, row, field, text), key in zip(fields, keys, strict=True):
        place = {"file": where, "row": row, "field": field}
        if where == "documents":
            place["id"] = documents[row]["id"]
        candidates = [(pii.Finding(*item[:4]), item[4]) for item in cache.get(key)["found"]]
        for item in privacy.judge(text, candidates, rules):
            finding = item.pop("_finding")
            item["_value"] = text[finding.start : finding.end]  # for --allow-found; never written
            found.append({**place, **item})
    for where, rows in (("pairs", pairs), ("documents", documents)):
        for row, record in enumerate(rows):
            for entity, count in (record.get("redacted") or {}).items():
                found += [{"file": where, "row": row, "entity": entity, "verdict": "redacted"}] * int(count)
    return found, len(todo)


def trace_texts(params: dict[str, Any], root=None) -> list[dict[str, Any]]:
    """The agent's tool-use traces (``paths.traces``, when the project has them) as texts to scan
    for personal data like the documents, one per trace (``id``: the file and line): what the
    traces say, the calls' arguments included. Their form is checked where they are read
    (``tools/traces.py``)."""
    from .collect import jsonl_lines

    if "traces" not in params["paths"] or not path(params, "traces", root).is_file():
        return []
    found = []
    for where, item in jsonl_lines(path(params, "traces", root)):
        # not a trace: the contract says so where traces are read
        messages = item.get("messages") or [] if isinstance(item, dict) else []
        parts = []
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                parts.append(str(message.get("content") or ""))
                for call in message.get("tool_calls") or []:
                    parts.append(str(((call or {}).get("function") or {}).get("arguments") or ""))
        if any(parts):
            found.append({"id": where.replace(" line ", ":"), "text": "\n".join(p for p in parts if p)})
    return found


def check(
    documents: list[dict[str, Any]],
    pairs: list[dict[str, Any]],
    params: dict[str, Any],
    root=None,
    traces: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Both checks; returns the summary written to ``paths.validation``. ``traces``: more texts for
    the privacy review alone (``trace_texts``)."""
    import pandas as pd

    contract = params["contract"]
    pair_frame = pd.DataFrame(pairs, columns=sorted({*PAIR_FIELDS, *(k for p in pairs for k in p)}))
    sources = sorted(d["id"] for d in documents)
    results = {
        "pairs": run_suite(pair_frame, pair_suite(contract, sources))
        if pairs
        else {"success": True, "failures": [], "skipped": "no pairs (documents only)"},
        "documents": run_suite(
            pd.DataFrame(documents, columns=["id", "text", "sha256"]), document_suite(contract)
        ),
    }
    from . import privacy
    from .cache import cache_file

    rules = privacy.policy(params, root or project_root())
    found, scanned = privacy_review(
        [*documents, *(traces or [])], pairs, rules, cache_file(params, "privacy_scans")
    )
    blocked = [f for f in found if f["verdict"] == privacy.BLOCK]
    known = set(sources)
    return {
        "success": all(r["success"] for r in results.values()) and not blocked,
        "foreign_pairs": bool(pairs) and not any(p.get("source") in known for p in pairs),
        "contract": results,
        "privacy": {
            "success": not blocked,
            "counts": privacy.counts(found),
            "scanned": scanned,  # texts scanned this run (the others unchanged since the last)
            "blocked": blocked,
            "findings": found,
        },
    }


def where(finding: dict[str, Any]) -> str:
    if finding["file"] == "documents":
        return f"document {finding['id']} line {finding['line']}"
    return f"pair {finding['row']} ({finding['field']})"


def explain(summary: dict[str, Any], shown: int = 5) -> list[str]:
    lines = []
    for name, result in summary["contract"].items():
        lines += [f"{name}: {describe(f)}" for f in result["failures"]]
    if summary.get("foreign_pairs"):
        from .questions import DRAFT

        lines.append(
            "the pairs cite none of these documents (the bundled sample's pairs with your own documents?): "
            f"point data.pairs at your own pairs, or at an empty file to start with documents only; {DRAFT}"
        )
    blocked = summary["privacy"]["blocked"]
    lines += [f"personal data ({f['entity']}) in {where(f)}: {f['masked']}" for f in blocked[:shown]]
    if len(blocked) > shown:
        lines.append(f"and {len(blocked) - shown} more")
    return lines


def privacy_message(summary: dict[str, Any], rules) -> str:
    """The count per entity and the remedy, naming the settings that decide."""
    from . import privacy

    blocked = summary["privacy"]["blocked"]
    if not blocked:
        return ""
    per = Counter(f["entity"] for f in blocked)
    listed = ", ".join(f"{entity} {count}" for entity, count in sorted(per.items()))
    return f"Personal data: {len(blocked)} values ({listed}). " + privacy.remedy(rules, sorted(per)) + "\n"


PACKAGE = (__package__ or "").split(".")[0]
ALLOW_FOUND = f"Many values to review? `uv run python -m {PACKAGE} validate --allow-found` lists them in the allow-list.\n"


def allow_found(summary: dict[str, Any], values: dict[int, str], params: dict[str, Any], root) -> int:
    """Append the blocked values to the allow-list, one per line with where it was found."""
    from . import privacy

    allow = (params.get("privacy") or {}).get("allow")
    if not allow:
        raise DataValidationError("privacy.allow: name the allow-list file in params.yaml first")
    lines, seen = [], set()
    for finding in summary["privacy"]["blocked"]:
        value = values.get(id(finding))
        if value and value not in seen:
            seen.add(value)
            lines.append(f"{value}   # {finding['entity']} in {where(finding)}: TO REVIEW")
    file = root / allow
    file.parent.mkdir(parents=True, exist_ok=True)
    old = file.read_text(encoding="utf-8") if file.is_file() else ""
    file.write_text(
        old + ("" if not old or old.endswith("\n") else "\n") + "\n".join(lines) + "\n", encoding="utf-8"
    )
    rules = privacy.policy(params, root)
    print(
        f"added {len(lines)} values to {allow}, each marked TO REVIEW: read them (git diff {allow}), delete "
        f"the lines that are personal data{' and redact or remove it' if rules.actions else ''}, then make repro"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    options = parser(__doc__, "validate")
    options.add_argument(
        "--allow-found",
        action="store_true",
        help="append every value the privacy check blocks to the allow-list (privacy.allow), each with "
        "its document and line, for you to review: delete the lines that are personal data",
    )
    args = options.parse_args(argv)
    params, root = load_params(), project_root()
    documents, pairs = read_jsonl(path(params, "documents")), read_jsonl(path(params, "pairs"))
    summary = check(documents, pairs, params, root, trace_texts(params, root))
    values = {id(f): f.pop("_value", None) for f in summary["privacy"]["findings"]}
    if args.allow_found and summary["privacy"]["blocked"]:
        return allow_found(summary, values, params, root)
    out = path(params, "validation")
    reports.write_json(out, summary)
    if not summary["success"]:
        from . import privacy

        lines = "\n".join(f"  - {line}" for line in explain(summary))
        raise DataValidationError(
            f"the text data failed its checks (every finding in {out.relative_to(root)}):\n{lines}\n"
            + privacy_message(summary, privacy.policy(params, root))
            + (ALLOW_FOUND if len(summary["privacy"]["blocked"]) > 5 else "")
            + "Fix the data (or, for a legitimate change, the contract or privacy in params.yaml) "
            "and run make repro."
        )
    judged = summary["privacy"]["counts"]
    note = "; ".join(f"{e}: " + ", ".join(f"{n} {v}" for v, n in c.items()) for e, c in judged.items())
    print(
        f"validation passed: {len(documents)} documents, {len(pairs)} pairs, no personal data to block; "
        f"{summary['privacy']['scanned']} texts scanned (the others unchanged since the last run)"
        + (f"; {note}; every finding in {out.relative_to(root)}" if note else "")
    )
    return 0
