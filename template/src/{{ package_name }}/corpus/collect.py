"""Data Collection (text): the documents and the instruction/answer pairs, as two JSONL files.

Reads ``data.documents`` (a folder: every ``.md`` and ``.txt`` file below it, in path order) and
``data.pairs`` (JSONL, one ``{"instruction", "answer", "source"}`` object per line) and writes
``paths.documents`` (``{"id", "text", "sha256"}`` per document, ``id`` its path in the folder) and
``paths.pairs``. A line that is not a JSON object is an error naming the file and line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..config import load_params, path, project_root
from ..errors import DataValidationError

SUFFIXES = (".md", ".txt")


def read_documents(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        raise DataValidationError(f"data.documents: {folder} is not a folder of .md or .txt files")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise DataValidationError(f"data.documents: no .md or .txt file in {folder}")
    documents = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        documents.append({"id": file.relative_to(folder).as_posix(), "text": text, "sha256": digest})
    return documents


def read_jsonl(file: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise DataValidationError(f"{file.name} line {number} is not JSON: {error}") from None
        if not isinstance(row, dict):
            raise DataValidationError(f"{file.name} line {number} is not a JSON object")
        rows.append(row)
    return rows


def write_jsonl(file: Path, rows: list[dict[str, Any]]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "collect").parse_args(argv)
    params, root = load_params(), project_root()
    documents = read_documents(root / params["data"]["documents"])
    pairs_file = root / params["data"]["pairs"]
    if not pairs_file.is_file():
        raise DataValidationError(f"data.pairs: {pairs_file} does not exist (a JSONL file of pairs)")
    pairs = read_jsonl(pairs_file)
    write_jsonl(path(params, "documents"), documents)
    write_jsonl(path(params, "pairs"), pairs)
    print(f"collected {len(documents)} documents and {len(pairs)} instruction/answer pairs")
    return 0
