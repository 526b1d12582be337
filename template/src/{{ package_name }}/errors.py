"""Errors a lifecycle gate raises when it blocks the pipeline."""


class GateError(Exception):
    """A gate refused to let the pipeline continue; the message says why."""


class DataValidationError(GateError):
    """Raw data broke the expectation suite."""


class QualityGateError(GateError):
    """The model fell short of the business thresholds."""


class PromotionError(GateError):
    """The challenger may not become champion."""


class SettingsError(GateError):
    """A settings file (params.yaml, business/kpis.yaml, data/columns.yaml) is wrong; the message
    names the file, the key and what is expected."""


def listed(items, limit: int = 5) -> str:
    """The first ``limit`` of ``items`` (text), comma-separated, with ", ..." when there are more."""
    items = list(items)
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters: a message never echoes a large input back."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
