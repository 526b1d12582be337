"""Continuous RAG optimisation: retrieval settings swept, the better ones proposed (``make rag-sweep``).

Every combination of ``sweep`` in ``params.yaml`` (chunk sizes and overlaps, ``top_k``, embedders,
keyword + vector ``hybrid`` retrieval), the current settings among them, is built in memory (the
documents tokenized once, the index's injection screen applied) and searched with the training
pairs' questions, whose ``source`` says which document holds the answer: ``mrr`` and ``hit_at_k``
as the evaluate stage measures them. The settings are chosen on the training questions and only
reported on the held-out ones, which stay for the gate: tuning on the questions the gate measures
would pass settings that fit them and nothing else.

The best combination (``mrr``, then ``hit_at_k``, then the fewest prompt tokens: ``top_k`` times
the chunk size) is proposed when it adds at least ``sweep.min_gain`` to the current ``mrr`` on the
training questions and does not lose on the held-out ones. Writes ``paths.rag_sweep`` (every
combination's scores) and a Markdown summary beside it; ``--apply`` writes the proposal into
``params.yaml`` (comments kept), for ``make repro`` and a pull request to take through the gates
(``.github/workflows/rag-sweep.yml`` does both weekly). Exits 0 whether or not it proposes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from .. import reports
from ..config import load_params, path, project_root, set_value
from ..errors import GateError

KEYS = ("size", "overlap", "top_k", "embedder", "hybrid")
PARAMS = {  # where each setting lives in params.yaml
    "size": ("chunking", "size"),
    "overlap": ("chunking", "overlap"),
    "top_k": ("retrieval", "top_k"),
    "embedder": ("retrieval", "embedder"),
    "hybrid": ("retrieval", "hybrid"),
}


def current(params: dict[str, Any]) -> dict[str, Any]:
    retrieval = params["retrieval"]
    return {
        "size": int(params["chunking"]["size"]),
        "overlap": int(params["chunking"]["overlap"]),
        "top_k": int(retrieval["top_k"]),
        "embedder": str(retrieval.get("embedder", "hashing")),
        "hybrid": bool(retrieval.get("hybrid", False)),
    }


def grid(params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every combination of ``sweep``, the current settings first (a list left empty tries the
    current value), and how many were left out for an overlap as large as the chunk size."""
    space, now = params.get("sweep") or {}, current(params)
    values = {
        "size": space.get("chunk_sizes") or [now["size"]],
        "overlap": space.get("overlaps") or [now["overlap"]],
        "top_k": space.get("top_k") or [now["top_k"]],
        "embedder": space.get("embedders") or [now["embedder"]],
        "hybrid": space.get("hybrid") or [now["hybrid"]],
    }
    combos, left_out = [now], 0
    for chosen in itertools.product(*(values[key] for key in KEYS)):
        combo = dict(zip(KEYS, chosen, strict=True))
        if combo["overlap"] >= combo["size"]:
            left_out += 1
        elif combo not in combos:
            combos.append(combo)
    return combos, left_out


def measure(params, combos, documents, tokenizer, root: Path, tuning, held_out) -> list[dict[str, Any]]:
    """Each of ``combos``' retrieval scores on the ``tuning`` and ``held_out`` questions."""
    from . import chunk, embed
    from .evaluate import retrieval_metrics
    from .index import Retriever, quarantine

    offsets = [chunk.offsets_of(d["text"], tokenizer) for d in documents]
    chunked: dict[tuple[int, int], list[dict[str, Any]]] = {}
    vectors: dict[tuple[int, int, str], Any] = {}  # (size, overlap, embedder): (embedder, vectors)
    indexes: dict[tuple[int, int, str, bool], Retriever] = {}
    out = []
    for combo in combos:
        cut = (combo["size"], combo["overlap"])
        if cut not in chunked:
            pieces = []
            for document, found in zip(documents, offsets, strict=True):
                pieces += chunk.chunks_of(document, chunk.cut(found, *cut))
            chunked[cut] = quarantine(pieces, root)[0]
        built = (*cut, combo["embedder"])
        if built not in vectors:
            model = embed.embedder({**params["retrieval"], "embedder": combo["embedder"]})
            features = model.features([c["text"] for c in chunked[cut]])
            model.fit(features)
            vectors[built] = (model, model.finish(features))
        if (*built, combo["hybrid"]) not in indexes:
            model, matrix = vectors[built]
            indexes[(*built, combo["hybrid"])] = Retriever.of(
                model, chunked[cut], matrix, {"hybrid": combo["hybrid"]}
            )
        retriever = indexes[(*built, combo["hybrid"])]
        row = {**combo, "chunks": len(chunked[cut])}
        for name, pairs in (("tuning", tuning), ("held_out", held_out)):
            if pairs:
                found = retriever.search([p["instruction"] for p in pairs], combo["top_k"])
                row[name] = retrieval_metrics(found, pairs)
        out.append(row)
    return out


def rank(row: dict[str, Any]) -> tuple:
    scores = row.get("tuning") or {}
    return (-scores.get("mrr", 0.0), -scores.get("hit_at_k", 0.0), row["top_k"] * row["size"])


def propose(rows: list[dict[str, Any]], min_gain: float) -> tuple[dict[str, Any] | None, str]:
    """The best row when it clears ``min_gain`` over the current one (``rows[0]``) and does not
    lose on the held-out questions; and why (not)."""
    now, best = rows[0], min(rows, key=rank)
    gain = round(best["tuning"]["mrr"] - now["tuning"]["mrr"], 6)
    if best is now or gain < min_gain:
        return None, f"the current settings are within sweep.min_gain ({min_gain}) of the best (mrr +{gain})"
    if "held_out" in now and best["held_out"]["mrr"] < now["held_out"]["mrr"]:
        return None, (
            f"the best settings gain {gain} mrr on the training questions but lose on the held-out ones "
            f"({best['held_out']['mrr']} < {now['held_out']['mrr']}): kept"
        )
    return best, f"mrr +{gain} on the training questions"


def changes(now: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    return {key: best[key] for key in KEYS if best[key] != now[key]}


def yaml_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | bool) else str(value)


def apply(changed: dict[str, Any], root: Path) -> None:
    params_file = root / "params.yaml"
    text = params_file.read_text(encoding="utf-8")
    for key, value in changed.items():
        block, name = PARAMS[key]
        text = set_value(text, block, name, yaml_value(value))
    params_file.write_text(text, encoding="utf-8")


def summary(rows: list[dict[str, Any]], best, why: str, left_out: int = 0, shown: int = 8) -> str:
    """The pull request's body: the proposal and the best combinations beside the current one."""
    head = "| chunk size | overlap | top_k | embedder | hybrid | mrr (training) | hit@k (training) | mrr (held-out) | hit@k (held-out) |"
    lines = [
        "# Retrieval settings sweep",
        "",
        f"**{'Proposed' if best else 'No change'}**: {why}.",
    ]
    if best:
        shown_changes = [
            f"`{'.'.join(PARAMS[k])}: {yaml_value(v)}`" for k, v in changes(rows[0], best).items()
        ]
        lines.append("Changes: " + ", ".join(shown_changes))
    if left_out:
        lines.append(f"Left out: {left_out} combinations whose overlap is not below the chunk size.")
    lines += ["", head, "|" + "---|" * 9]
    listed = [rows[0], *[r for r in sorted(rows, key=rank) if r is not rows[0]][: shown - 1]]
    for row in listed:
        tuning, held = row.get("tuning") or {}, row.get("held_out") or {}
        mark = " (current)" if row is rows[0] else ""
        lines.append(
            f"| {row['size']}{mark} | {row['overlap']} | {row['top_k']} | {row['embedder']} | "
            f"{yaml_value(row['hybrid'])} | "
            f"{tuning.get('mrr', '')} | {tuning.get('hit_at_k', '')} | {held.get('mrr', '')} | {held.get('hit_at_k', '')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from ..corpus.collect import read_jsonl
    from . import base

    options = parser(__doc__, "rag-sweep")
    options.add_argument("--apply", action="store_true", help="write a proposal into params.yaml")
    args = options.parse_args(argv)
    params, root = load_params(), project_root()
    if not params.get("retrieval"):
        raise GateError("rag-sweep: this project has no retrieval (llm_parts)")
    tuning = [p for p in read_jsonl(path(params, "train_pairs", root)) if p.get("source")]
    held_out = [p for p in read_jsonl(path(params, "eval_pairs", root)) if p.get("source")]
    if not tuning:
        raise GateError(
            f"rag-sweep: no training pairs with a source in {params['paths']['train_pairs']}: run make repro "
            "(the split writes them), with pairs that name the document holding each answer"
        )
    documents = read_jsonl(path(params, "documents", root))
    combos, left_out = grid(params)
    rows = measure(params, combos, documents, base.load(params), root, tuning, held_out)
    best, why = propose(rows, float((params.get("sweep") or {}).get("min_gain", 0.02)))
    report = path(params, "rag_sweep", root)
    reports.write_json(
        report,
        {
            "current": rows[0],
            "proposed": best,
            "changes": changes(rows[0], best) if best else {},
            "why": why,
            "left_out": left_out,
            "tuning_questions": len(tuning),
            "held_out_questions": len(held_out),
            "combinations": sorted(rows, key=rank),
        },
    )
    report.with_suffix(".md").write_text(summary(rows, best, why, left_out), encoding="utf-8")
    shown = report.with_suffix(".md").relative_to(root)
    print(f"rag-sweep: {len(rows)} combinations on {len(tuning)} training questions; {why} -> {shown}")
    if best and args.apply:
        apply(changes(rows[0], best), root)
        print(f"rag-sweep: params.yaml <- {changes(rows[0], best)}; run make repro, the gates judge it")
    return 0
