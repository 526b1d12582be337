"""Data Collection (text): the documents and the instruction/answer pairs, as two JSONL files.

Reads ``data.documents``, a folder tree of documents as people have them: HTML, Markdown,
reStructuredText, plain text, PDF and DOCX (``convert.py`` says how each becomes text; navigation,
headers and footers of HTML pages are left out), and ``data.pairs`` (JSONL, one
``{"instruction", "answer", "source"}`` object per line). Writes ``paths.documents``
(``{"id", "title", "url", "kind", "text", "sha256"}`` per document, ``id`` its path in the
folder, ``url`` for HTML pages: their canonical link, or ``data.base_url`` joined with the path)
and ``paths.pairs``. The values of entities that ``privacy`` in ``params.yaml`` redacts are
replaced by ``<ENTITY>`` here, before any later stage sees them.

Only new and changed files are converted: the conversions are kept in ``paths.conversions``
(keyed by the file's content), and a run with many files to convert uses every core. The stage
says how many documents of each kind it read, names every file it could not read with the reason,
and counts the files of other types it left out. A line of the pairs that is not a JSON object is
an error naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root
from ..errors import DataValidationError

PARALLEL_FROM = 16  # files to convert before the work is spread over the cores


def _convert_one(job: tuple[str, str, str]) -> dict[str, Any]:
    from .convert import Unreadable, convert

    file, relative, base_url = job
    try:
        converted = convert(Path(file), relative, base_url)
    except Unreadable as error:
        return {"error": str(error)}
    return {"text": converted.text, "title": converted.title, "url": converted.url}


def over_the_cores(function, jobs: list, parallel: bool) -> list:
    """``[function(job) for job in jobs]``, in processes on every core (up to 8) when ``parallel``
    and the machine has more than one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(cores, 8)
    if not parallel or workers < 2:
        return [function(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(function, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers)))))


def read_documents(
    folder: Path, base_url: str = "", cache_file: Path | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The documents of ``folder`` and what the stage saw (``kinds``, ``unreadable``, ``other``,
    ``converted``, ``cached``)."""
    from .cache import Cache
    from .convert import VERSION, kind_of

    if not folder.is_dir():
        raise DataValidationError(f"data.documents: {folder} is not a folder of documents")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    readable = [p for p in files if kind_of(p)]
    other = Counter(p.suffix.lower() or "(no suffix)" for p in files if not kind_of(p))
    if not readable:
        raise DataValidationError(
            f"data.documents: no document in {folder} (HTML, Markdown, reStructuredText, text, PDF or DOCX)"
        )
    cache = Cache(cache_file)
    keys, jobs, results = [], [], {}
    for file in readable:
        relative = file.relative_to(folder).as_posix()
        content = hashlib.sha256(file.read_bytes()).hexdigest()
        key = f"{VERSION}:{relative}:{content}:{base_url}"
        keys.append((file, relative, key))
        cached = cache.get(key)
        if cached is not None:
            results[key] = cached
        else:
            jobs.append((str(file), relative, base_url, key))
    converted = over_the_cores(_convert_one, [j[:3] for j in jobs], len(jobs) >= PARALLEL_FROM)
    for job, result in zip(jobs, converted, strict=True):
        results[job[3]] = cache.put(job[3], result)
    cache.save()
    documents, unreadable, kinds = [], [], Counter()
    for file, relative, key in keys:
        result = results[key]
        if "error" in result:
            unreadable.append((relative, result["error"]))
            continue
        kind = kind_of(file)
        kinds[kind] += 1
        text = result["text"]
        documents.append(
            {
                "id": relative,
                "title": result["title"],
                "url": result["url"],
                "kind": kind,
                "text": text,
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
            }
        )
    seen = {"kinds": dict(kinds), "unreadable": unreadable, "other": dict(other)}
    seen.update(converted=len(jobs), cached=len(readable) - len(jobs))
    if not documents:
        raise DataValidationError(
            f"data.documents: none of the {len(readable)} documents in {folder} could be read: "
            + _listed(unreadable)
        )
    return documents, seen


def _listed(unreadable: list[tuple[str, str]], shown: int = 10) -> str:
    named = "; ".join(f"{name} ({reason})" for name, reason in unreadable[:shown])
    return named + (f"; and {len(unreadable) - shown} more" if len(unreadable) > shown else "")


def report(seen: dict[str, Any], pairs: int) -> str:
    """What the stage read, converted, could not read and left out, in a few lines."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(seen["kinds"].items()))
    total = sum(seen["kinds"].values())
    lines = [
        f"collected {total} documents ({kinds}; {seen['converted']} converted, {seen['cached']} unchanged) "
        f"and {pairs} instruction/answer pairs"
    ]
    if seen["unreadable"]:
        lines.append(f"could not read {len(seen['unreadable'])} files: " + _listed(seen["unreadable"]))
    if seen["other"]:
        other = ", ".join(f"{suffix} {count}" for suffix, count in sorted(seen["other"].items()))
        lines.append(f"left out {sum(seen['other'].values())} files that are not documents ({other})")
    return "\n".join(lines)


def jsonl_lines(file: Path):
    """``(where, value)`` for each line of a JSON Lines file with text (``where``: its name and
    line number; ``value``: what the line holds, or the ``ValueError`` of a line that is not JSON)."""
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError as error:
                value = error
            yield f"{file.name} line {number}", value


def read_jsonl(file: Path) -> list[dict[str, Any]]:
    rows = []
    for where, row in jsonl_lines(file):
        if isinstance(row, ValueError):
            raise DataValidationError(f"{where} is not JSON: {row}")
        if not isinstance(row, dict):
            raise DataValidationError(f"{where} is not a JSON object")
        rows.append(row)
    return rows


def write_jsonl(file: Path, rows: list[dict[str, Any]]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def redact(rows: list[dict[str, Any]], fields: tuple[str, ...], rules) -> int:
    """Replace, in place, the values ``rules`` redacts; each row records its counts; the total."""
    from . import privacy

    total = 0
    for row in rows:
        counts: Counter = Counter()
        for field in fields:
            if isinstance(row.get(field), str):
                row[field], found = privacy.redact(row[field], rules)
                counts.update(found)
        if counts:
            row["redacted"] = dict(counts)
            total += sum(counts.values())
    return total


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser
    from . import privacy

    parser(__doc__, "collect").parse_args(argv)
    params, root = load_params(), project_root()
    data = params["data"]
    from .cache import cache_file

    cache = cache_file(params, "conversions")
    documents, seen = read_documents(root / data["documents"], data.get("base_url", ""), cache)
    pairs_file = root / data["pairs"]
    if not pairs_file.is_file():
        raise DataValidationError(
            f"data.pairs: {pairs_file} does not exist (a JSONL file of pairs; an empty file for documents only)"
        )
    pairs = read_jsonl(pairs_file)
    rules = privacy.policy(params, root)
    redacted = 0
    if rules.redacts():
        redacted = redact(documents, ("text",), rules) + redact(pairs, ("instruction", "answer"), rules)
    write_jsonl(path(params, "documents"), documents)
    write_jsonl(path(params, "pairs"), pairs)
    print(report(seen, len(pairs)))
    if not pairs:
        from .questions import HOW_TO_ADD

        print(
            "no instruction/answer pairs: retrieval, the index and the service run on the documents; "
            f"fine-tuning and the answer scores are skipped until you {HOW_TO_ADD}"
        )
    if redacted:
        print(f"redacted {redacted} values of personal data (privacy.entities: redact)")
    return 0
