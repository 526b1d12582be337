"""Data Preparation (text): the data contract and data privacy governance, before any model sees it.

Two checks, both written to ``paths.validation``; either failing stops the pipeline:

1. **The contract** (Great Expectations, ``contract`` in ``params.yaml``): every pair has a non-empty
   ``instruction``, ``answer`` and ``source``; their lengths (characters) are within bounds; no
   instruction appears twice; every ``source`` names a collected document; every document's length
   is within bounds and no document is an exact copy of another.
2. **Privacy** (``pii.py``, ``privacy`` in ``params.yaml``): no personal data in the pairs or the
   documents. A finding names the field, the row and a masked example. If it is not personal
   (a published support phone number, say), remove that entity from ``privacy.entities`` or
   redact the text, and say why in the commit.
"""

from __future__ import annotations

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


def privacy_findings(documents, pairs, privacy: dict[str, Any], limit: int = 5) -> list[dict[str, Any]]:
    """Up to ``limit`` findings of personal data, each with the field, the row and a masked example."""
    from . import pii

    entities = privacy.get("entities") or pii.DEFAULT_ENTITIES
    min_score = float(privacy.get("min_score", 0.4))
    found: list[dict[str, Any]] = []
    fields = [
        ("pairs", i, field, row.get(field))
        for i, row in enumerate(pairs)
        for field in ("instruction", "answer")
    ]
    fields += [("documents", i, "text", doc.get("text")) for i, doc in enumerate(documents)]
    for where, row, field, text in fields:
        if not isinstance(text, str):
            continue
        for finding in pii.find(text, entities, min_score):
            found.append(
                {
                    "file": where,
                    "row": row,
                    "field": field,
                    "entity": finding.entity,
                    "example": finding.masked(text),
                    "id": (documents[row]["id"] if where == "documents" else None),
                }
            )
            if len(found) >= limit:
                return found
    return found


def check(
    documents: list[dict[str, Any]], pairs: list[dict[str, Any]], params: dict[str, Any]
) -> dict[str, Any]:
    """Both checks; returns the summary written to ``paths.validation``."""
    import pandas as pd

    contract = params["contract"]
    pair_frame = pd.DataFrame(pairs, columns=sorted({*PAIR_FIELDS, *(k for p in pairs for k in p)}))
    sources = sorted(d["id"] for d in documents)
    results = {
        "pairs": run_suite(pair_frame, pair_suite(contract, sources)),
        "documents": run_suite(
            pd.DataFrame(documents, columns=["id", "text", "sha256"]), document_suite(contract)
        ),
    }
    findings = privacy_findings(documents, pairs, params.get("privacy") or {})
    return {
        "success": all(r["success"] for r in results.values()) and not findings,
        "contract": results,
        "privacy": {"success": not findings, "findings": findings},
    }


def explain(summary: dict[str, Any]) -> list[str]:
    lines = []
    for name, result in summary["contract"].items():
        lines += [f"{name}: {describe(f)}" for f in result["failures"]]
    for f in summary["privacy"]["findings"]:
        where = f"document {f['id']}" if f["file"] == "documents" else f"pair {f['row']} ({f['field']})"
        lines.append(f"personal data ({f['entity']}) in {where}: {f['example']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "validate").parse_args(argv)
    params, root = load_params(), project_root()
    documents, pairs = read_jsonl(path(params, "documents")), read_jsonl(path(params, "pairs"))
    summary = check(documents, pairs, params)
    out = path(params, "validation")
    reports.write_json(out, summary)
    if not summary["success"]:
        lines = "\n".join(f"  - {line}" for line in explain(summary))
        raise DataValidationError(
            f"the text data failed its checks (full result in {out.relative_to(root)}):\n{lines}\n"
            "Fix the data (or, for a legitimate change, the contract in params.yaml) and run make repro."
        )
    print(f"validation passed: {len(documents)} documents, {len(pairs)} pairs, no personal data")
    return 0
