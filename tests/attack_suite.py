"""Prompts from a third-party LLM vulnerability scanner (garak, Apache-2.0), for the guardrails test.

Run in an environment with garak installed (its probes build their prompts offline): prints one
JSON object per line, ``{"set": "attack" | "benign", "family", "probe", "text"}``. Attacks: up to
``PER_PROBE`` prompts of each active injection and jailbreak probe; benign: the package-hallucination
probes' coding questions, which are ordinary technical requests. The sample is seeded.
"""

import contextlib
import importlib
import inspect
import io
import json
import random
import sys

ATTACK_FAMILIES = [
    "badchars",
    "dan",
    "doctor",
    "dra",
    "encoding",
    "exploitation",
    "goodside",
    "grandma",
    "latentinjection",
    "promptinject",
    "smuggling",
    "suffix",
    "tap",
    "web_injection",
]
NOT_ATTACKS = {"WhoIsRiley", "Davidjl", "ThreatenJSON"}  # questions about a person or a token
BENIGN = ["Python", "JavaScript", "Rust", "Ruby", "Perl", "Dart", "RakuLand"]


def prompts_of(cls) -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        probe = cls()
    texts = [
        p if isinstance(p, str) else (getattr(p, "text", None) or p.turns[-1].content.text)
        for p in probe.prompts
    ]
    return [t.replace("{generator.name}", "Assistant") for t in texts if t]


def main(per_probe: int, benign_per_probe: int) -> None:
    import garak._config

    garak._config.load_base_config()
    import garak.probes.base as base

    rng = random.Random(7)
    random.seed(7)  # probes that build their prompts at random (encoding, latent injection) build the same
    for family in ATTACK_FAMILIES:
        module = importlib.import_module(f"garak.probes.{family}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, base.Probe) or cls.__module__ != module.__name__ or name.startswith("_"):
                continue
            if name.endswith("Full") or name in NOT_ATTACKS or name == "AutoDAN":
                continue
            try:
                texts = prompts_of(cls)
            except Exception as error:  # a probe that needs a model or a download: left out, said so
                print(f"left out {family}.{name}: {type(error).__name__}", file=sys.stderr)
                continue
            for text in rng.sample(texts, min(per_probe, len(texts))):
                print(json.dumps({"set": "attack", "family": family, "probe": name, "text": text}))
    module = importlib.import_module("garak.probes.packagehallucination")
    for name in BENIGN:
        texts = prompts_of(getattr(module, name))
        for text in rng.sample(texts, min(benign_per_probe, len(texts))):
            print(json.dumps({"set": "benign", "family": "coding-questions", "probe": name, "text": text}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
