"""Spending limits of the chat service (``budget`` in params.yaml), in the prices of
``business/prices.yaml``: ``per_day``, what all requests of a UTC day may cost together, and
``per_key_per_day``, what one key may (the request's ``user`` field, else ``safety_identifier`` or
``prompt_cache_key``, kept as a digest; requests without one share the key ``anonymous``). A request that would
generate past a limit is refused with 429 (``budget_exceeded``) saying which limit, what was spent
and when it resets; answers from the semantic cache and the extractive route
(``chat/routing.py``) cost nothing and are still given. What was
spent is counted from the request log of the day when the service starts, so a restart does not
reset it; replicas each count their own requests (give each its share of the limit).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

ANONYMOUS = "anonymous"


def owner(key: str) -> str:
    """The budget's name for a request's key: a digest (the key may be an e-mail address, and the
    request log keeps no personal data), or ``anonymous``."""
    import hashlib

    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] if key else ANONYMOUS


class Budget:
    def __init__(self, per_day: float = 0.0, per_key_per_day: float = 0.0):
        self.per_day, self.per_key = float(per_day or 0), float(per_key_per_day or 0)
        self._day = ""
        self._total = 0.0
        self._by_key: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.per_day > 0 or self.per_key > 0

    def _today(self, now: datetime | None = None) -> str:
        day = (now or datetime.now(UTC)).date().isoformat()
        if day != self._day:  # a new UTC day: the counts start again
            self._day, self._total, self._by_key = day, 0.0, {}
        return day

    def spend(self, key: str, cost: float, now: datetime | None = None) -> None:
        with self._lock:
            self._today(now)
            self._total += cost
            self._by_key[key or ANONYMOUS] = self._by_key.get(key or ANONYMOUS, 0.0) + cost

    def refusal(self, key: str, now: datetime | None = None) -> str | None:
        """Why a request of ``key`` may not generate now (None: it may)."""
        with self._lock:
            self._today(now)
            spent_key = self._by_key.get(key or ANONYMOUS, 0.0)
            if self.per_day and self._total >= self.per_day:
                return (
                    f"the service's budget for today is spent: {self._total:.6g} of budget.per_day "
                    f"{self.per_day:g} (business/prices.yaml units); it starts again at 00:00 UTC"
                )
            if self.per_key and spent_key >= self.per_key:
                who = "requests without a user" if (key or ANONYMOUS) == ANONYMOUS else "this user"
                return (
                    f"the budget of {who} for today is spent: {spent_key:.6g} of "
                    f"budget.per_key_per_day {self.per_key:g}; it starts again at 00:00 UTC"
                )
            return None


def load(params: dict[str, Any], log_folder) -> Budget:
    """The limits of ``params``, with what today's request log says was already spent."""
    from ..serving.log import read_records

    settings = params.get("budget") or {}
    budget = Budget(settings.get("per_day", 0.0), settings.get("per_key_per_day", 0.0))
    if budget.active and log_folder is not None and log_folder.is_dir():
        today = datetime.now(UTC).date().isoformat()
        for record in read_records(log_folder, days=1)[0]:
            if str(record.get("ts", "")).startswith(today) and record.get("cost"):
                budget.spend(record.get("key") or ANONYMOUS, float(record["cost"]))
    return budget
