"""The llmops project on a real model, against the libraries used bare, side by side in one run.

    <project>/.venv/bin/python bench/llm_real.py --project <project> [--repeats 3] [--out FILE]

``<project>`` is an llmops project on a real model and a sentence-transformers embedder that has
run ``make repro`` (as ``tests/test_real_models.py`` builds one: SmolLM2-135M-Instruct and
all-MiniLM-L6-v2 from PyPI packages, Python's HTML documentation). Each measurement alternates the
project's path and the bare library call, ``--repeats`` times each, one torch thread (as the
project runs on a CPU), and reports medians and their ratio:

- indexing: chunks/s of the ``index`` stage's embedding (``embed.cached_features``, a fresh
  cache) against ``SentenceTransformer.encode`` on the same chunks and batch size (target >= 0.9x);
- fine-tuning: training tokens/s of ``finetune.train`` (PEFT LoRA in its accelerate loop) against a
  bare PEFT loop (``get_peft_model``, AdamW, the same batches; target >= 0.9x);
- streaming: time to the first answer text through the chat service (HTTP on 127.0.0.1, retrieval
  and the output rails included) against the model's own first token through ``generate`` with a
  ``TextIteratorStreamer`` on the same prompt (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def median(values: list[float]) -> float:
    return round(statistics.median(values), 4)


def take_turns(ours, bare, repeats: int) -> tuple[list[float], list[float]]:
    """``repeats`` measurements of each side, taking turns, each side first in every other round."""
    samples: dict = {ours: [], bare: []}
    for rep in range(repeats):
        for run in (ours, bare) if rep % 2 == 0 else (bare, ours):
            samples[run].append(run())
    return samples[ours], samples[bare]


def compared(unit: str, ours: list[float], bare: list[float], target: str, **extra) -> dict:
    """Medians of both sides and their ratio."""
    return {
        **extra,
        f"ours_{unit}": median(ours),
        f"bare_{unit}": median(bare),
        "ratio": round(median(ours) / median(bare), 3),
        "target": target,
    }


def indexing(params, root, repeats: int, count: int = 512) -> dict:
    from sentence_transformers import SentenceTransformer

    pkg = importlib_package()
    embed = __import__(f"{pkg}.llm.embed", fromlist=["embed"])
    read_jsonl = __import__(f"{pkg}.corpus.collect", fromlist=["read_jsonl"]).read_jsonl
    chunks = read_jsonl(root / params["paths"]["chunks"])[:count]
    texts = [c["text"] for c in chunks]
    ours_model = embed.embedder(params["retrieval"])
    bare_model = SentenceTransformer(params["retrieval"]["embedder"], device="cpu")
    ours_model.features(["warm-up"])  # both models loaded before the clock starts
    bare_model.encode(["warm-up"])

    def run_ours() -> float:
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            embed.cached_features(ours_model, chunks, Path(folder) / "cache.npz")
            return len(chunks) / (time.perf_counter() - started)

    def run_bare() -> float:
        started = time.perf_counter()
        bare_model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return len(chunks) / (time.perf_counter() - started)

    ours, bare = take_turns(run_ours, run_bare, repeats)
    return compared("chunks_per_s", ours, bare, ">= 0.9", chunks=len(chunks))


def finetuning(params, root, repeats: int, rows_count: int = int(os.environ.get("BENCH_ROWS", "16"))) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model

    pkg = importlib_package()
    finetune = __import__(f"{pkg}.llm.finetune", fromlist=["train"])
    generate = __import__(f"{pkg}.llm.generate", fromlist=["load_local"])
    assistant = __import__(f"{pkg}.llm.assistant", fromlist=["from_project"])
    base = __import__(f"{pkg}.llm.base", fromlist=["source"])
    read_jsonl = __import__(f"{pkg}.corpus.collect", fromlist=["read_jsonl"]).read_jsonl
    settings = {**params["finetune"], "epochs": 1}
    pairs = read_jsonl(root / params["paths"]["train_pairs"])[:rows_count]
    app = assistant.from_project(params, root, generate=False)
    questions = [p["instruction"] for p in pairs]
    prompts = app.prompts(questions, app.contexts(questions))
    source = base.source(params, root)
    tokenizer, _ = generate.load_local(source)
    rows = generate.examples(tokenizer, prompts, [p["answer"] for p in pairs], int(settings["max_length"]))

    def bare_loop() -> float:  # the baseline: PEFT's own loop, written out here on purpose
        _, model = generate.load_local(source)
        lora = settings["lora"]
        torch.manual_seed(int(settings["seed"]))
        config = LoraConfig(
            task_type="CAUSAL_LM",
            r=int(lora["r"]),
            lora_alpha=int(lora["alpha"]),
            lora_dropout=float(lora["dropout"]),
            target_modules=lora["target_modules"],
        )
        model = get_peft_model(model, config)
        model.train()
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=float(settings["learning_rate"])
        )
        loader = torch.utils.data.DataLoader(
            rows,
            batch_size=int(settings["batch_size"]),
            shuffle=True,
            collate_fn=finetune.collate(tokenizer.pad_token_id),
            generator=torch.Generator().manual_seed(int(settings["seed"])),
        )
        tokens, started = 0, time.perf_counter()
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            tokens += int(batch["attention_mask"].sum())
        return tokens / (time.perf_counter() - started)

    def ours_loop() -> float:
        _, model = generate.load_local(source)
        model.train()
        return finetune.train(model, tokenizer, rows, settings)[1]["tokens_per_second"]

    ours, bare = take_turns(ours_loop, bare_loop, repeats)
    return compared("tokens_per_s", ours, bare, ">= 0.9", rows=len(rows))


def streaming(params, root, repeats: int) -> dict:
    import threading

    import httpx
    import torch
    import uvicorn
    from transformers import TextIteratorStreamer

    pkg = importlib_package()
    create_app = __import__(f"{pkg}.chat.app", fromlist=["create_app"]).create_app
    assistant = __import__(f"{pkg}.llm.assistant", fromlist=["from_project"])
    generate = __import__(f"{pkg}.llm.generate", fromlist=["as_text"])
    question = "How do I pretty-print JSON with json.dumps?"
    app = create_app(params=params, root=root)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1/chat/completions"
    helper = assistant.from_project(params, root)
    prompt = helper.prompts([question], helper.contexts([question]))[0]
    model, tokenizer = helper.generate.model, helper.generate.tokenizer
    body = {"messages": [{"role": "user", "content": question}], "stream": True, "max_tokens": 48}

    def service_ttft() -> float:
        started, first = time.perf_counter(), None
        with httpx.stream("POST", url, json=body, timeout=600) as response:
            for line in response.iter_lines():
                if first is None and line.startswith("data: {"):
                    event = json.loads(line[6:])
                    if any((c.get("delta") or {}).get("content") for c in event.get("choices", [])):
                        first = time.perf_counter() - started
        return first

    def bare_ttft() -> float:
        batch = tokenizer(
            [generate.as_text(tokenizer, prompt)], return_tensors="pt", add_special_tokens=False
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run() -> None:
            with torch.no_grad():  # per thread, as the service's generator does
                model.generate(
                    **batch,
                    max_new_tokens=48,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    streamer=streamer,
                )

        started = time.perf_counter()
        worker = threading.Thread(target=run)
        worker.start()
        first = None
        for piece in streamer:
            if piece and first is None:
                first = time.perf_counter() - started
        worker.join()
        return first

    service_ttft()  # warm-up: the first request loads what the later ones reuse
    ours, bare = take_turns(service_ttft, bare_ttft, repeats)
    server.should_exit = True
    return compared("ttft_s", ours, bare, "<= 1.2")


def importlib_package() -> str:
    return os.environ["BENCH_PACKAGE"]


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--project", required=True, type=Path)
    options.add_argument("--repeats", type=int, default=3)
    options.add_argument("--out", type=Path, default=Path("bench/llm-real-results.json"))
    options.add_argument("--only", choices=["indexing", "finetuning", "streaming"], action="append")
    args = options.parse_args()
    root, out = args.project.resolve(), args.out.resolve()
    os.chdir(root)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["PROJECT_ROOT"] = str(root)
    os.environ["PREDICTION_LOG_DIR"] = tempfile.mkdtemp(prefix="bench-requests-")
    sys.path.insert(0, str(root / "src"))
    import yaml

    os.environ["BENCH_PACKAGE"] = next(
        p.name for p in (root / "src").iterdir() if (p / "__init__.py").is_file()
    )
    import torch

    torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))
    params = yaml.safe_load((root / "params.yaml").read_text())
    results = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "model": params["model"]["base"],
        "embedder": params["retrieval"]["embedder"],
        "repeats": args.repeats,
    }
    for name, measure in (("indexing", indexing), ("finetuning", finetuning), ("streaming", streaming)):
        if args.only and name not in args.only:
            continue
        print(f"{name} ...", flush=True)
        results[name] = measure(params, root, args.repeats)
        print(json.dumps(results[name]), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
