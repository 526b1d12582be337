"""LoRA against full fine-tuning, in one run, on the same model shape and the same data.

    python bench/lora.py [--shape qwen2-0.5b|small] [--steps N] [--out FILE]

Builds a causal language model from a configuration only (random weights: no download; the
shape is what matters for memory and speed), then fine-tunes it twice on the same random token
batches: once in full (every weight trainable, AdamW), once with PEFT LoRA adapters (r=8 on
every attention and MLP projection, the base frozen, AdamW). Both the way they are usually run:
on CUDA, fp32 master weights with bf16 autocast and gradient checkpointing; on CPU, fp32.
``--frozen-dtype bf16`` keeps LoRA's frozen base in bf16 (its adapters stay fp32), as LoRA is
commonly run: full fine-tuning cannot, its fp32 master weights are what it trains. Reports for each: trainable
parameters and their share, peak memory (CUDA: the allocator's peak; CPU: the process's peak
resident memory, measured in a fresh process per mode), median step time and training tokens/s.
The same script runs on a GPU (``--shape qwen2-0.5b``: a Qwen2-0.5B-shaped model, 494 M
parameters) and on CPU with one torch thread (``--shape small``). Needs torch, transformers, peft.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHAPES = {
    # Qwen2-0.5B's architecture (hidden 896, 24 layers, 14 heads / 2 KV heads, MLP 4864, vocab 151936).
    "qwen2-0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    },
    # The same proportions, small enough for a 2-core CPU.
    "small": {
        "hidden_size": 256,
        "intermediate_size": 1024,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 8192,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
    },
}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def train(
    mode: str, shape: str, steps: int, batch: int, length: int, device: str, frozen_dtype: str = "fp32"
) -> dict:
    """One mode, in this process: build, fine-tune ``steps`` steps, measure."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    if device == "cpu":
        torch.set_num_threads(1)
    model = Qwen2ForCausalLM(Qwen2Config(**SHAPES[shape])).to(device=device)
    total = sum(p.numel() for p in model.parameters())
    if mode == "lora" and frozen_dtype == "bf16":
        model = model.to(torch.bfloat16)  # get_peft_model keeps the adapters in fp32
    if device == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS)
        )
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    vocab = SHAPES[shape]["vocab_size"]
    batches = [torch.randint(0, vocab, (batch, length), generator=generator) for _ in range(4)]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps):
        tokens = batches[step % len(batches)].to(device)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=tokens, labels=tokens).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    measured = times[2:] if steps > 4 else times  # the first steps warm up kernels and the allocator
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step_s = statistics.median(measured)
    return {
        "mode": mode,
        "parameters": total,
        "trainable": sum(p.numel() for p in trainable),
        "trainable_share": sum(p.numel() for p in trainable) / total,
        "peak_mib": round(peak, 1),
        "step_s": round(step_s, 4),
        "tokens_per_s": round(batch * length / step_s, 1),
        "final_loss": round(float(loss), 4),
    }


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument(
        "--shape", choices=sorted(SHAPES), default=None, help="default: qwen2-0.5b on CUDA, small on CPU"
    )
    options.add_argument("--steps", type=int, default=12)
    options.add_argument("--batch", type=int, default=None, help="default: 8 on CUDA, 4 on CPU")
    options.add_argument(
        "--length", type=int, default=None, help="tokens per sequence; default: 512 on CUDA, 128 on CPU"
    )
    options.add_argument("--out", type=Path, default=Path(__file__).parent / "results/lora.json")
    options.add_argument(
        "--frozen-dtype", choices=["fp32", "bf16"], default="fp32", help="LoRA's frozen base weights"
    )
    options.add_argument("--mode", choices=["full", "lora"], help=argparse.SUPPRESS)  # one mode, in a child
    args = options.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape = args.shape or ("qwen2-0.5b" if device == "cuda" else "small")
    batch = args.batch or (8 if device == "cuda" else 4)
    length = args.length or (512 if device == "cuda" else 128)
    if args.mode:  # child: one mode, its result as JSON on the last line
        print(json.dumps(train(args.mode, shape, args.steps, batch, length, device, args.frozen_dtype)))
        return 0
    results = {}
    for mode in ("full", "lora"):  # a fresh process each, so peak memory is that mode's alone
        cmd = [sys.executable, __file__, "--mode", mode, "--shape", shape, "--steps", str(args.steps)]
        cmd += ["--batch", str(batch), "--length", str(length), "--frozen-dtype", args.frozen_dtype]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    full, lora = results["full"], results["lora"]
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"CPU ({platform.processor() or 'x86_64'}), 1 torch thread",
        "torch": torch.__version__,
        "shape": shape,
        "batch": batch,
        "length": length,
        "steps": args.steps,
        "lora_frozen_dtype": args.frozen_dtype,
        "full": full,
        "lora": lora,
        "lora_trainable_share": round(lora["trainable"] / lora["parameters"], 5),
        "lora_peak_vs_full": round(lora["peak_mib"] / full["peak_mib"], 3),
        "lora_step_vs_full": round(lora["step_s"] / full["step_s"], 3),
        "targets": {"trainable_share_max": 0.01, "peak_vs_full_max": 0.6},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"| mode | trainable (share) | peak MiB | step s | tokens/s |  ({report['device']}, {shape}, batch {batch} x {length})"
    )
    for row in (full, lora):
        print(
            f"| {row['mode']} | {row['trainable']:,} ({row['trainable_share']:.2%}) | {row['peak_mib']} "
            f"| {row['step_s']} | {row['tokens_per_s']} |"
        )
    print(
        f"LoRA/full: trainable share {report['lora_trainable_share']:.3%} (target <= 1%), "
        f"peak memory {report['lora_peak_vs_full']}x (target <= 0.6x), step time {report['lora_step_vs_full']}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
