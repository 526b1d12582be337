"""The llmops pipeline on the ``tiny`` model: `dvc repro` from scratch, and where each stage's time goes.

    make env && uv run python bench/llm_pipeline.py [--repeats N] [--out bench/llm-pipeline-results.json]

Renders an llmops project (``base_model: tiny``, every part), sets it up (``make setup``: the CPU
build of torch), runs one untimed ``dvc repro`` (bytecode caches), then N times ``dvc repro`` from
scratch (outputs, DVC cache, MLflow store and embeddings cache removed). Then each stage's command
alone, N times, and once under ``python -X importtime``: the stage's wall time split into imports
(by top-level package) and the rest (the interpreter's start, reading, training, generating,
logging). Offline: ``HF_HUB_OFFLINE=1``; torch comes from pip's local wheels when the machine has
them (``tests/torch_index.py``), else from PyTorch's index.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from run import BIN, IMPORT_LINE, OUTPUTS, REPO, Bench, machine, package_name  # noqa: E402
from torch_index import local_index  # noqa: E402

TARGET = 60.0


class LlmBench(Bench):
    outputs = (*OUTPUTS, "data/cache")  # the embeddings cache too: from scratch means re-embedding
    answers = ("profile=llmops", "base_model=tiny")  # copier's -d answers of the rendered project

    def project(self) -> Path:
        self.progress(f"render and set up an llmops project ({', '.join(self.answers)}; make setup)")
        project = self.work / "llm"
        cmd = [str(BIN / "copier"), "copy", "--defaults", "--quiet", "--vcs-ref", "HEAD"]
        for answer in self.answers:
            cmd += ["-d", answer]
        cmd += [str(REPO), str(project)]
        self.timed(cmd, self.work)
        self.timed(["make", "setup"], project)
        self.timed(["git", "add", "--all"], project)
        self.timed(["git", "commit", "--quiet", "--no-verify", "-m", "bench: rendered project"], project)
        return project

    def repro(self, project: Path) -> None:
        repro = ["make", "repro"]
        self.clean(project)
        self.progress("warm-up make repro (bytecode caches of a new environment)")
        self.record(
            "repro_first", "first `make repro` after set-up (untimed warm-up)", [self.timed(repro, project)]
        )
        samples = []
        for i in range(self.repeats):
            self.progress(f"make repro from scratch {i + 1}/{self.repeats}")
            self.clean(project)
            samples.append(self.timed(repro, project))
        self.record("repro_scratch", "`make repro` (dvc repro) from scratch", samples, TARGET)

    def stages(self, project: Path, pkg: str) -> None:
        import yaml

        # The rendered project's own stages, in order: the benchmark follows the template.
        self.extra["stages"] = stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
        python = str(project / ".venv" / "bin" / "python")
        per_stage: dict[str, list[float]] = defaultdict(list)
        for i in range(self.repeats):
            self.progress(f"each stage alone {i + 1}/{self.repeats}")
            for stage in stages:
                per_stage[stage].append(self.timed([python, "-m", pkg, stage], project))
        for stage in stages:
            self.record(f"stage_{stage}", f"`python -m <pkg> {stage}`", per_stage[stage])
        self.record("python_start", "`python -c pass`", [self.timed([python, "-c", "pass"], project)])
        self.progress("python -X importtime for each stage")
        breakdown = {}
        for stage in stages:
            _, done = self.run([python, "-X", "importtime", "-m", pkg, stage], project)
            by_package: dict[str, int] = defaultdict(int)
            for line in done.stderr.splitlines():
                match = IMPORT_LINE.match(line)
                if match:
                    by_package[match.group(4).split(".")[0]] += int(match.group(1))
            top = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:4]
            breakdown[stage] = {
                "import_s": round(sum(by_package.values()) / 1e6, 3),
                "top_packages_s": {name: round(us / 1e6, 3) for name, us in top},
            }
        self.extra["imports_per_stage"] = breakdown


def report(bench: LlmBench, info: dict[str, str]) -> str:
    r, per = bench.results, bench.extra["imports_per_stage"]
    scratch = r["repro_scratch"]
    verdict = "met" if scratch["median"] <= TARGET else "missed"
    lines = [
        f"`make repro` from scratch, llmops on tiny: median {scratch['median']:.1f} s "
        f"(min {scratch['min']:.1f}, max {scratch['max']:.1f}, n={scratch['n']}); target <= {TARGET:.0f} s: {verdict}",
        f"first run after set-up (warm-up): {r['repro_first']['median']:.1f} s; "
        f"`python -c pass`: {r['python_start']['median']:.2f} s",
        "",
        "| stage | wall (s, median) | imports (s) | work and start (s) | biggest imports (s) |",
        "|---|---:|---:|---:|---|",
    ]
    total = 0.0
    for stage in bench.extra["stages"]:
        wall = r[f"stage_{stage}"]["median"]
        imports = per[stage]["import_s"]
        total += wall
        top = ", ".join(f"{k} {v:.1f}" for k, v in per[stage]["top_packages_s"].items())
        lines.append(f"| {stage} | {wall:.2f} | {imports:.2f} | {max(wall - imports, 0):.2f} | {top} |")
    lines.append(
        f"| **sum of stages** | {total:.1f} | | | DVC's own share: {scratch['median'] - total:.1f} s |"
    )
    lines += ["", f"machine: {info}"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llm-bench-") as folder:
        work = Path(folder)
        bench = LlmBench(work, args.repeats)
        bench.env.update(local_index(work))
        bench.env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        project = bench.project()
        pkg = package_name(project)
        bench.repro(project)
        bench.stages(project, pkg)
        info = machine(project)
        text = report(bench, info)
    print(text)
    if args.out:
        payload = {"results": bench.results, "extra": bench.extra, "machine": info}
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if statistics.median(bench.results["repro_scratch"]["samples"]) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
