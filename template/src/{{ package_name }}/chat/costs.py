"""Prices per token (``business/prices.yaml``, dated), turned into the cost of each request.

Checked when loaded: both prices are numbers of at least 0 and ``as_of`` is a date, so a cost on a
dashboard always says which price list it came from.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from ..config import parse_yaml, project_root
from ..errors import SettingsError

PRICES_FILE = "business/prices.yaml"


def load(root: Path | None = None) -> dict[str, Any]:
    file = (root or project_root()) / PRICES_FILE
    if not file.is_file():
        raise SettingsError(f"{PRICES_FILE} is missing: the prices per token of the cost metrics")
    raw = parse_yaml(file.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise SettingsError(f"{PRICES_FILE}: expected a mapping with as_of, currency and the prices")
    unknown = sorted(set(raw) - {"as_of", "currency", "input_per_million", "output_per_million"})
    if unknown:
        raise SettingsError(f"{PRICES_FILE}: {unknown[0]}: unknown key (a typo?)")
    for key in ("input_per_million", "output_per_million"):
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SettingsError(f"{PRICES_FILE}: {key}: expected a price of 0 or more, got {value!r}")
    if not isinstance(raw.get("as_of"), datetime.date):
        raise SettingsError(f"{PRICES_FILE}: as_of: expected the date of the price list (YYYY-MM-DD)")
    return {**raw, "as_of": raw["as_of"].isoformat(), "currency": str(raw.get("currency", "USD"))}


def cost(prices: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> float:
    per_token = 1e-6
    return (
        prompt_tokens * prices["input_per_million"] + completion_tokens * prices["output_per_million"]
    ) * per_token
