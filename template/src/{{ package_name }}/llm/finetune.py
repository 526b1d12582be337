"""Fine-tune: a LoRA adapter on the training pairs (PEFT), tracked in MLflow.

Each training pair becomes the application's own prompt (``assistant.py``: the retrieved context
and the question in ``prompts/answer.txt``) followed by the reference answer; the loss counts the
answer's tokens only. With the agent, every assistant turn of the tool-use traces
(``paths.traces``, ``tools/traces.py``) is an example too: the conversation as the agent shows it,
and the call or answer the model should write. ``finetune`` in ``params.yaml`` holds the LoRA settings (rank, alpha, dropout,
target modules) and the training ones (epochs, batch size, learning rate, maximum length, seed).

The loop is driven by ``accelerate``: the same command runs on a CPU, one GPU, or
several GPUs and nodes with ``accelerate launch -m <package> finetune``. The adapter (a few MB on a
real model, kilobytes on ``tiny``) is ``paths.adapter``, a DVC output, and an artifact of the
MLflow run with the loss of every step (``train_loss``), its mean over the first and the last tenth of
the steps, the trainable share, tokens/s, training and wall time, and peak memory (the process's
resident set on a CPU, the most allocated on a GPU). Merging it into the base weights is
optional: ``python -m <package> merge`` (``merge.py``).
"""

from __future__ import annotations

import time
from typing import Any

from ..config import load_params, path, project_root


def collate(pad_id: int):
    def batch(rows: list[dict[str, list[int]]]):
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = [r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows]
        labels = [r["labels"] + [-100] * (width - len(r["labels"])) for r in rows]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    return batch


def train(model, tokenizer, rows: list[dict[str, list[int]]], settings: dict[str, Any], accelerator=None):
    """LoRA on ``model``; returns the PEFT model (unwrapped) and what the run measured."""
    import torch
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model

    from .generate import answer_loss

    lora = settings["lora"]
    torch.manual_seed(int(settings["seed"]))
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=int(lora["r"]),
        lora_alpha=int(lora["alpha"]),
        lora_dropout=float(lora["dropout"]),
        target_modules=lora["target_modules"],
        modules_to_save=list(lora.get("modules_to_save") or []) or None,
    )
    model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=float(settings["learning_rate"])
    )
    loader = torch.utils.data.DataLoader(
        rows,
        batch_size=int(settings["batch_size"]),
        shuffle=True,
        collate_fn=collate(tokenizer.pad_token_id),
        generator=torch.Generator().manual_seed(int(settings["seed"])),
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    model.train()
    on_gpu = accelerator.device.type == "cuda"
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    losses, tokens, started = [], 0, time.perf_counter()
    for _ in range(int(settings["epochs"])):
        for batch in loader:
            loss, _ = answer_loss(model, batch)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
            tokens += int(batch["attention_mask"].sum())
    seconds = time.perf_counter() - started
    accelerator.wait_for_everyone()
    model = accelerator.unwrap_model(model)
    model.eval()
    start, end = loss_summary(losses)
    measured = {
        "train_loss_start": start,
        "train_loss_end": end,
        "steps": len(losses),
        "trainable_parameters": trainable,
        "trainable_share": round(trainable / total, 6),
        "train_seconds": round(seconds, 3),
        "train_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds else 0.0,
        **peak_memory(accelerator.device if on_gpu else None),
    }
    return model, measured, accelerator, losses


def loss_summary(losses: list[float]) -> tuple[float, float]:
    """The mean training loss of the first and of the last tenth of the steps (at least one step
    each): single batches are too noisy to compare."""
    if not losses:
        return 0.0, 0.0
    tenth = max(1, len(losses) // 10)
    return round(sum(losses[:tenth]) / tenth, 6), round(sum(losses[-tenth:]) / tenth, 6)


def peak_memory(device=None) -> dict[str, float]:
    """Peak memory of the run in MB: the process's resident set on a CPU, the most allocated on the
    GPU ``device`` (with the process's too)."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, bytes on macOS
    peak = {"peak_rss_mb": round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)}
    if device is not None:
        import torch

        peak["peak_gpu_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return peak


def main(argv: list[str] | None = None) -> int:
    import shutil

    from ..cli import parser
    from ..corpus.collect import read_jsonl
    from ..registry import tracking
    from . import assistant
    from .generate import examples, load_local

    parser(__doc__, "finetune").parse_args(argv)
    began = time.perf_counter()
    params, root = load_params(), project_root()
    settings = params["finetune"]
    pairs = read_jsonl(path(params, "train_pairs"))
    traces = tool_traces(params, root)
    if not pairs and not traces:
        from ..corpus.questions import HOW_TO_ADD

        out = path(params, "adapter", root)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        (out / "NO_ADAPTER.txt").write_text("No training pairs: the application uses the base model alone.\n")
        print(
            f"finetune skipped: no training pairs, the base model answers alone; to fine-tune, {HOW_TO_ADD}"
        )
        return 0
    app = assistant.from_project(params, root, generate=False)
    questions = [p["instruction"] for p in pairs]
    prompts = app.prompts(questions, app.contexts(questions)) if questions else []
    from . import base

    tokenizer, model = load_local(base.source(params, root))
    model.train()
    answers = [p["answer"] for p in pairs]
    prompts, answers = [*prompts, *(seen for seen, _ in traces)], [*answers, *(wrote for _, wrote in traces)]
    rows = examples(tokenizer, prompts, answers, int(settings["max_length"]))
    model, measured, accelerator, losses = train(model, tokenizer, rows, settings)
    if not accelerator.is_main_process:
        return 0
    out = path(params, "adapter", root)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out))
    measured["wall_seconds"] = round(time.perf_counter() - began, 3)
    run = tracking.log_run(
        {
            **tracking.flatten({"finetune": settings}),
            "model.base": params["model"]["base"],
            "pairs": len(pairs),
            "trace_turns": len(traces),
        },
        {k: float(v) for k, v in measured.items()},
        {**tracking.lineage_tags(root, path(params, "train_pairs")), "stage": "finetune"},
        params["tracking"],
        log_model=_log_adapter(out, losses),
    )
    memory = f"peak RSS {measured['peak_rss_mb']:.0f} MB" + (
        f", GPU {measured['peak_gpu_allocated_mb']:.0f} MB" if "peak_gpu_allocated_mb" in measured else ""
    )
    print(
        f"LoRA adapter: {measured['trainable_share']:.2%} of the parameters trained, {measured['steps']} steps, "
        f"mean loss of the first tenth {measured['train_loss_start']:.3f}, of the last {measured['train_loss_end']:.3f}; "
        f"{measured['tokens_per_second']:.0f} tokens/s, {measured['train_seconds']:.1f} s training "
        f"({measured['wall_seconds']:.1f} s in all), {memory} -> {out.relative_to(root)} (MLflow run {run['run_id']})"
    )
    return 0


def tool_traces(params: dict[str, Any], root) -> list[tuple[list[dict[str, str]], str]]:
    """The agent's tool-use traces as examples (``tools/traces.py``; none without the agent part)."""
    import importlib.util

    package = __package__.rsplit(".", 1)[0]
    if importlib.util.find_spec(f"{package}.tools") is None:
        return []
    from ..tools import traces

    return traces.load(params, root)


def _log_adapter(folder, losses: list[float]):
    """Inside the run: the loss of every step as the ``train_loss`` series, then the adapter."""

    def log():
        import mlflow
        from mlflow.entities import Metric

        run = mlflow.active_run()
        now = int(time.time() * 1000)
        series = [Metric("train_loss", float(v), now, step) for step, v in enumerate(losses)]
        client = mlflow.MlflowClient()
        for start in range(0, len(series), 1000):  # MLflow takes at most 1000 metrics per batch
            client.log_batch(run.info.run_id, metrics=series[start : start + 1000])
        mlflow.log_artifacts(str(folder), artifact_path="adapter")

    return log
