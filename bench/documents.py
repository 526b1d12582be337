"""10,000 documents through the llmops project's first stages on this machine: collect, validate,
chunk and index, then the same after 10 documents changed (only those converted and embedded again).

    .demo/my-ml-project/.venv/bin/python bench/documents.py --project .demo/my-ml-project \\
        [--documents 10000] [--source /usr/share/doc/python3.11/html] [--out bench/documents-results.json]

``--project`` is a set-up llmops project whose pipeline has run (its ``models/base`` tokenizer is
used; ``make demo PROFILE=llmops`` makes one). The documents are real HTML: Python's documentation
as Debian installs it (``python3-doc``), each page cut at its sections into pages of their own, with
the page's navigation, header and footer kept around each, as a documentation site serves them,
until there are ``--documents``. Each stage is its own ``python -m <package> <stage>`` process on a
scratch copy of the project with documents only (no pairs), as ``make repro`` runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECTION = re.compile(r'(<section id="[^"]+">|<div class="section" id="[^"]+">)')
STAGES = ("collect", "validate", "chunk", "index")


def pages(source: Path, wanted: int, target: Path) -> int:
    """Write ``wanted`` HTML pages under ``target``: each section of each page of ``source`` inside
    the page's own head, navigation and footer."""
    written = 0
    files = sorted(source.rglob("*.html"))
    for copy in range(1000):
        for file in files:
            html = file.read_text(encoding="utf-8", errors="replace")
            parts = SECTION.split(html)
            if len(parts) < 3:
                continue
            head, rest = parts[0], parts[1:]
            tail = (
                html[html.rfind("</section>") + len("</section>") :]
                if "</section>" in html
                else "</body></html>"
            )
            for number in range(0, len(rest) - 1, 2):
                body = rest[number] + rest[number + 1].split("</section>")[0] + "</section>"
                name = (
                    target / f"copy{copy}" / file.relative_to(source).with_suffix("") / f"{number // 2}.html"
                )
                name.parent.mkdir(parents=True, exist_ok=True)
                opening, _, rest_of_body = body.partition(">")  # each page's own text: no two alike
                marker = f"<p>Page {copy}-{written} of the benchmark.</p>"
                name.write_text(head + opening + ">" + marker + rest_of_body + tail, encoding="utf-8")
                written += 1
                if written >= wanted:
                    return written
    return written


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--project", type=Path, required=True)
    options.add_argument("--documents", type=int, default=10_000)
    options.add_argument("--source", type=Path)
    options.add_argument("--out", type=Path, default=Path("bench/documents-results.json"))
    args = options.parse_args()
    project, out = args.project.resolve(), args.out.resolve()
    source = args.source or next(
        iter(sorted(Path("/usr/share/doc").glob("python3*/html"), reverse=True)), None
    )
    if source is None or not source.is_dir():
        sys.exit("no HTML documentation: apt-get install python3-doc, or give --source")
    package = next(p.name for p in (project / "src").iterdir() if (p / "__init__.py").is_file())
    python = str(project / ".venv" / "bin" / "python")
    work = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    for name in (
        "params.yaml",
        "business",
        "prompts",
        "guardrails",
        "models/base",
        "data/privacy-allowlist.txt",
    ):
        if (project / name).is_dir():
            shutil.copytree(project / name, work / name)
        elif (project / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(project / name, work / name)
    import yaml

    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"].update(documents="data/docs", pairs="data/no-pairs.jsonl")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (work / "data").mkdir(exist_ok=True)
    (work / "data/no-pairs.jsonl").write_text("")
    count = pages(source, args.documents, work / "data" / "docs")
    size = sum(f.stat().st_size for f in (work / "data" / "docs").rglob("*.html"))
    env = {
        **os.environ,
        "PROJECT_ROOT": str(work),
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    results = {
        "documents": count,
        "html_mb": round(size / 2**20, 1),
        "cpus": len(os.sched_getaffinity(0)),
        "source": str(source),
        "first": {},
        "after_10_changed": {},
    }

    def stage(name: str, into: dict) -> None:
        started = time.perf_counter()
        done = subprocess.run(
            [python, "-m", package, name], cwd=work, env=env, capture_output=True, text=True
        )
        into[name] = {"seconds": round(time.perf_counter() - started, 2), "said": done.stdout.strip()[-400:]}
        print(f"{name}: {into[name]['seconds']} s: {into[name]['said'][-200:]}", file=sys.stderr, flush=True)
        if done.returncode != 0:
            into[name]["failed"] = done.stderr.strip()[-1500:]
            print(done.stderr[-1500:], file=sys.stderr)

    for name in STAGES:
        stage(name, results["first"])
    changed = sorted((work / "data" / "docs").rglob("*.html"))[:: max(1, count // 10)][:10]
    for file in changed:
        file.write_text(file.read_text().replace("of the benchmark.", "of the benchmark, changed today.", 1))
    for name in STAGES:
        stage(name, results["after_10_changed"])
    results["total_first_s"] = round(sum(v["seconds"] for v in results["first"].values()), 1)
    results["total_after_s"] = round(sum(v["seconds"] for v in results["after_10_changed"].values()), 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work)
    print(
        json.dumps(
            {k: v for k, v in results.items() if k.startswith("total") or k in ("documents", "html_mb")}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
