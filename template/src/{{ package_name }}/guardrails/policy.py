"""The guardrails policy (``guardrails/policy.yaml``), checked whole when it is loaded.

A misspelt key, an unknown action or a pattern that is not a regular expression is an error that
names the file and the key, before the service starts or the stage runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from ..config import parse_yaml, project_root
from ..errors import SettingsError

POLICY_FILE = "guardrails/policy.yaml"


def _model():
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    strict = ConfigDict(extra="forbid")

    class Pii(BaseModel):
        model_config = strict
        action: Literal["redact", "block", "flag", "off"] = "redact"
        entities: list[str] = Field(min_length=1)
        min_score: float = Field(0.4, ge=0, le=1)
        model: str = "blank"  # a spaCy pipeline name for names and places (an NER model); blank: none

    class Detector(BaseModel):
        model_config = strict
        action: Literal["screen", "off"] = "screen"
        min_score: float = Field(0.8, gt=0, le=1)

    class Injection(BaseModel):
        model_config = strict
        action: Literal["block", "flag", "off"] = "block"
        detector: Detector = Detector()
        patterns: list[str] = []

        @field_validator("patterns")
        @classmethod
        def _compiles(cls, patterns: list[str]) -> list[str]:
            for number, pattern in enumerate(patterns):
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError(f"pattern {number} is not a regular expression: {error}") from None
            return patterns

    class Obfuscation(BaseModel):
        model_config = strict
        action: Literal["block", "flag", "off"] = "block"

    class Retrieved(BaseModel):
        model_config = strict
        action: Literal["drop", "flag", "off"] = "drop"

    class Grounding(BaseModel):
        model_config = strict
        action: Literal["flag", "replace", "off"] = "flag"
        min_share: float = Field(0.3, ge=0, le=1)

    class Canary(BaseModel):
        model_config = strict
        action: Literal["replace", "flag", "off"] = "replace"

    class Input(BaseModel):
        model_config = strict
        max_chars: int = Field(4000, gt=0)
        max_tokens: int = Field(1024, gt=0)
        obfuscation: Obfuscation = Obfuscation()
        injection: Injection = Injection()
        retrieved: Retrieved = Retrieved()
        pii: Pii | None = None

    class Output(BaseModel):
        model_config = strict
        pii: Pii | None = None
        grounding: Grounding = Grounding()
        canary: Canary = Canary()
        max_chars: int = Field(4000, gt=0)
        blocked_patterns: list[str] = []
        fallback: str = Field(min_length=1)
        stream_hold_chars: int = Field(64, ge=8)  # the most a stream holds back: the longest value to catch

        @field_validator("blocked_patterns")
        @classmethod
        def _compiles(cls, patterns: list[str]) -> list[str]:
            return Injection._compiles(patterns)

    class Messages(BaseModel):
        model_config = strict
        blocked: str = "The request was blocked by the service's policy (rule: {rule})."

    class Policy(BaseModel):
        model_config = strict
        input: Input
        output: Output
        messages: Messages = Messages()

    return Policy


def validate(raw: Any, file: str = POLICY_FILE) -> dict[str, Any]:
    """``raw`` checked against the policy's model: the policy with its defaults filled in."""
    from pydantic import ValidationError

    from ..settings import _describe

    if not isinstance(raw, dict):
        raise SettingsError(f"{file}: expected a mapping with input and output, got {type(raw).__name__}")
    try:
        return _model().model_validate(raw).model_dump()
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors(include_url=False)]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SettingsError(f"{file}: " + "; ".join(problems[:3]) + more) from None


def load(root: Path | None = None, file: str = POLICY_FILE) -> dict[str, Any]:
    location = (root or project_root()) / file
    if not location.is_file():
        raise SettingsError(f"{file} is missing: the service's guardrails policy")
    return validate(parse_yaml(location.read_text(encoding="utf-8")), file)
