"""Gate semantics, in one place for every gate of the lifecycle.

A bound in ``business/kpis.yaml`` is ``{min: x}`` (higher is better), ``{max: y}`` (lower is
better), or both with ``direction: higher|lower`` stated. Nothing else is a bound: a mistyped key
(``minimum``, ``Max``) or a value that is not a number is an error naming the file and the key,
never a gate that silently passes. ``business/kpis.yaml`` is parsed once, when
it is loaded (``config.load_kpis``), into a ``Kpis``: every bound a ``Bound``, every tolerance a
number. The evaluation gate, the CI gate and its regression check, promotion, the load test, the
responsible-AI check and monitoring read their limits from it and decide with ``Bound.passes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import SettingsError
from .files import KPIS_FILE

KEYS = ("min", "max", "direction")


@dataclass(frozen=True)
class Bound:
    """A limit on one metric; ``where`` names the file and key it came from."""

    where: str
    min: float | None = None
    max: float | None = None
    direction: str | None = None

    @property
    def higher_is_better(self) -> bool:
        if self.direction:
            return self.direction == "higher"
        return self.max is None

    def passes(self, value: float | None) -> bool:
        """True when ``value`` is a number inside the bound (a missing or NaN value never passes)."""
        if (
            value is None
            or isinstance(value, bool)
            or not isinstance(value, int | float)
            or math.isnan(value)
        ):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def text(self) -> str:
        parts = ([f">= {self.min}"] if self.min is not None else []) + (
            [f"<= {self.max}"] if self.max is not None else []
        )
        return " and ".join(parts)

    def worse_by(self, value: float, reference: float) -> float:
        """How much worse ``value`` is than ``reference`` (negative: better)."""
        return reference - value if self.higher_is_better else value - reference


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise SettingsError(f"{where}: expected a number, got {value!r}")
    return float(value)


def bound(raw: Any, where: str) -> Bound:
    """Parse ``{min: x}``, ``{max: y}`` or both with ``direction``; ``where`` is e.g.
    ``business/kpis.yaml: thresholds.f1``."""
    if not isinstance(raw, dict) or not raw:
        raise SettingsError(
            f"{where}: expected a bound such as " + "{min: 0.9} or {max: 100}" + f", got {raw!r}"
        )
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        hint = {"minimum": "min", "maximum": "max", "lower": "min", "upper": "max"}
        fixes = ", ".join(
            f"'{k}' (did you mean '{hint.get(str(k).lower(), str(k).lower())}'?)"
            if str(k).lower() in (*hint, *KEYS)
            else repr(k)
            for k in unknown
        )
        raise SettingsError(f"{where}: unknown key {fixes}; a bound has only min, max and direction")
    low = _number(raw["min"], f"{where}.min") if "min" in raw else None
    high = _number(raw["max"], f"{where}.max") if "max" in raw else None
    direction = raw.get("direction")
    if direction is not None and direction not in ("higher", "lower"):
        raise SettingsError(f"{where}.direction: use higher or lower, not {direction!r}")
    if low is None and high is None:
        raise SettingsError(f"{where}: give min or max")
    if low is not None and high is not None:
        if low > high:
            raise SettingsError(f"{where}: min {low} is above max {high}")
        if direction is None:
            raise SettingsError(f"{where}: with both min and max, say direction: higher or lower")
    return Bound(where, low, high, direction)


def bounds(section: Any, where: str) -> dict[str, Bound]:
    """``{name: Bound}`` of a mapping of bounds (``thresholds``, ``service``, ...)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise SettingsError(
            f"{where}: expected a mapping of name: " + "{min|max: number}" + f", got {section!r}"
        )
    return {str(name): bound(raw, f"{where}.{name}") for name, raw in section.items()}


def grouped_bounds(section: Any, group: str, where: str) -> tuple[dict[str, Bound], dict[str, Bound]]:
    """A mapping of bounds with one nested mapping of bounds named ``group`` (``guardrails`` and its
    ``families``): the bounds outside it, and those in it."""
    section = dict(section or {}) if isinstance(section, dict) or section is None else section
    inner = section.pop(group, None) if isinstance(section, dict) else None
    if inner is not None and not isinstance(inner, dict):
        raise SettingsError(
            f"{where}.{group}: expected a mapping of name: " + "{min|max: number}" + f", got {inner!r}"
        )
    return bounds(section, where), bounds(inner, f"{where}.{group}")


def check(
    name: str, value: float | None, limit: Bound, interval: list[float] | None = None, confidence=None
) -> dict[str, Any]:
    """One gate check as every report writes it. With the metric's ``interval`` (``[low, high]``,
    each end one-sided at ``confidence``), the value passes only when the interval's end on the
    bound's side passes too: the low end above a ``min``, the high end below a ``max``."""
    item = {
        "metric": name,
        "value": value,
        "limit": limit.text(),
        "passed": limit.passes(value),
        **({"min": limit.min} if limit.min is not None else {}),
        **({"max": limit.max} if limit.max is not None else {}),
    }
    if interval is not None:
        low, high = interval
        inside = (limit.min is None or low >= limit.min) and (limit.max is None or high <= limit.max)
        item.update(interval=interval, confidence=confidence, passed=item["passed"] and inside)
    return item


def beats_baseline(
    name: str,
    value: float | None,
    baseline: float | None,
    margin: float,
    higher: bool,
    against: str = "the trivial baseline",
    lead: list[float] | None = None,
    confidence=None,
):
    """The model's ``name`` must beat the baseline's (``against``: what it is) by ``margin``, in the
    metric's direction; with ``lead`` (the interval of the model's lead over the baseline on the
    same resamples), its end on the losing side must clear the margin too."""
    if baseline is None:
        return {"metric": f"{name} vs baseline", "value": value, "limit": "no baseline", "passed": False}
    needed = round(baseline + margin if higher else baseline - margin, 6)
    limit = Bound(f"baseline.{name}", min=needed if higher else None, max=None if higher else needed)
    item = {**check(f"{name} vs baseline", value, limit), "baseline": baseline, "against": against}
    if lead is not None:
        end = lead[0] if higher else -lead[1]
        item.update(lead=lead, confidence=confidence, passed=item["passed"] and end >= margin)
    return item


NOT_WORSE = " not worse than baseline"


def not_worse(
    name: str,
    value: float | None,
    baseline: float | None,
    tolerance: float,
    kpis: Kpis,
    against: str,
) -> dict[str, Any]:
    """Non-inferiority: ``name`` may be worse than the baseline's by at most ``tolerance``, in the
    metric's direction (a missing or NaN value never passes)."""
    item = {
        "metric": f"{name}{NOT_WORSE}",
        "value": value,
        "baseline": baseline,
        "against": against,
        "tolerance": tolerance,
        "limit": f"at most {tolerance} worse than {baseline}",
    }
    a_number = Bound(name, min=-math.inf)  # only whether it is a number: thresholds are checked apart
    item["passed"] = bool(
        a_number.passes(value)
        and a_number.passes(baseline)
        and kpis.bound_of(name).worse_by(value, baseline) <= tolerance + 1e-12
    )
    return item


def gate(
    metrics: dict[str, Any],
    kpis: Kpis,
    against: str = "the trivial baseline",
    reasons: dict[str, str] | None = None,
    intervals: dict[str, list[float]] | None = None,
    more: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every threshold of ``kpis``, the primary metric beating ``metrics['baseline']`` (what
    ``against`` names) by ``baseline_margin``, and every metric of ``non_inferiority`` no worse than
    the baseline's by more than its tolerance, when there is a baseline. ``reasons``: why a metric was
    not computed, by name, shown beside each check of it. ``intervals``: each metric's interval
    (and ``"<primary> vs baseline"``, the lead's), one-sided at ``evidence.confidence``, whose ends
    must clear the bounds too; ``more``: further checks (the evidence's: ``evidence_checks``)."""
    intervals = intervals or {}
    confidence = kpis.evidence.confidence if intervals else None
    checks = [
        check(name, metrics.get(name), limit, intervals.get(name), confidence)
        for name, limit in kpis.thresholds.items()
    ]
    primary, margin = kpis.primary_metric, kpis.baseline_margin
    if primary and margin is not None and "baseline" in metrics:
        reference = (metrics.get("baseline") or {}).get(primary)
        higher = kpis.higher_is_better(primary)
        lead = intervals.get(f"{primary} vs baseline")
        checks.append(
            beats_baseline(
                primary, metrics.get(primary), reference, margin, higher, against, lead, confidence
            )
        )
    if "baseline" in metrics:
        for name, tolerance in kpis.non_inferiority.items():
            if name != primary:
                reference = (metrics.get("baseline") or {}).get(name)
                checks.append(not_worse(name, metrics.get(name), reference, tolerance, kpis, against))
    for item in checks:
        reason = (reasons or {}).get(item["metric"].removesuffix(" vs baseline").removesuffix(NOT_WORSE))
        if item["value"] is None and reason:
            item["reason"] = reason
    checks += more or []
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def evidence_checks(rows: int, class_rows: dict[str, int] | None, kpis: Kpis) -> list[dict[str, Any]]:
    """How much the test split holds against the least ``evidence`` asks for: its rows and, for a
    classifier, the rows of its rarest class."""
    needed = kpis.evidence
    items = [
        {
            "metric": "test rows",
            "value": rows,
            "limit": f">= {needed.min_test_rows}",
            "passed": rows >= needed.min_test_rows,
            "evidence": "min_test_rows",
        }
    ]
    if class_rows:
        rarest = min(class_rows, key=lambda label: (class_rows[label], label))
        items.append(
            {
                "metric": f"test rows of the rarest class ({rarest!r})",
                "value": class_rows[rarest],
                "limit": f">= {needed.min_class_rows}",
                "passed": class_rows[rarest] >= needed.min_class_rows,
                "evidence": "min_class_rows",
            }
        )
    return items


def failure_line(item: dict[str, Any], source: str = "business/kpis.yaml") -> str:
    """One readable line for a failed check."""
    if item.get("evidence"):
        return (
            f"{item['metric']} = {item['value']} but {source} requires {item['limit']} "
            f"(evidence.{item['evidence']}): too little held-out data to judge a model; add rows, or "
            "raise prepare.test_size in params.yaml"
        )
    sure = f"at {item.get('confidence', 0.95):.0%} confidence"
    if "interval" in item and Bound("", item.get("min"), item.get("max"), "higher").passes(item["value"]):
        low, high = item["interval"]
        return (
            f"{item['metric']} = {item['value']}, but its interval over the test split is [{low}, {high}] "
            f"({sure}) and {source} requires {item['limit']}: the test split cannot show the model "
            "is that good (add rows, or take a bound the data can show)"
        )
    if (
        "lead" in item
        and item["value"] is not None
        and Bound("", item.get("min"), item.get("max"), "higher").passes(item["value"])
    ):
        low, high = item["lead"]
        return (
            f"{item['metric']}: {item['value']} beats {item.get('against', 'the baseline')} ({item['baseline']}) "
            f"by the margin, but its lead over it is [{low}, {high}] ({sure}) across the test split: too "
            f"little evidence that it is better ({source}: baseline_margin)"
        )
    if item.get("reason"):
        return f"{item['metric']} is not computed, and {source} gates it: {item['reason']}"
    if "tolerance" in item:
        name = item["metric"].removesuffix(NOT_WORSE)
        setting = item.get("setting", f"non_inferiority.{name}")
        return (
            f"{name}: {item['value']} is worse than {item['against']} ({item['baseline']}) by more than "
            f"{source} allows ({setting}: {item['tolerance']})"
        )
    if "baseline" in item:
        return (
            f"{item['metric']}: {item['value']} does not beat {item.get('against', 'the baseline')} ({item['baseline']}) "
            f"by the margin {source} asks ({item['limit']})"
        )
    advice = f": {item['advice']}" if item.get("advice") else ""
    return f"{item['metric']} = {item['value']} but {source} requires {item['limit']}{advice}"


@dataclass(frozen=True)
class Evidence:
    """How much held-out data the gate asks for, and how its intervals are drawn."""

    confidence: float = 0.95
    resamples: int = 200
    seed: int = 0
    min_test_rows: int = 30
    min_class_rows: int = 5


@dataclass(frozen=True)
class Routing:
    """Model routing's gate (llmops, ``chat/routing.py``): each cheaper route's answers no worse
    than the main model's on the held-out questions it takes, on at least ``min_questions``."""

    min_questions: int = 5
    non_inferiority: dict[str, float] = field(default_factory=dict)


MIN_GROUP_ROWS = 20  # fairness: groups smaller than this are reported, not compared


@dataclass(frozen=True)
class Fairness:
    """The responsible-AI check: the largest difference between groups, per metric."""

    sensitive_feature: str
    max_difference: dict[str, float] = field(default_factory=dict)
    min_group_rows: int = MIN_GROUP_ROWS


@dataclass(frozen=True)
class Kpis:
    """``business/kpis.yaml`` as every gate reads it: parsed once by ``parse`` (``settings.py``
    checks the keys and types first), then passed along."""

    primary_metric: str | None = None
    thresholds: dict[str, Bound] = field(default_factory=dict)
    baseline_margin: float | None = None  # None: the primary metric is not compared to a baseline
    non_inferiority: dict[str, float] = field(default_factory=dict)
    max_regression: float = 0.0  # ci.max_regression: how much worse than the base branch
    service: dict[str, Bound] = field(default_factory=dict)
    monitoring: dict[str, Bound] = field(default_factory=dict)
    guardrails: dict[str, Bound] = field(default_factory=dict)
    guardrail_families: dict[str, Bound] = field(default_factory=dict)
    agent: dict[str, Bound] = field(default_factory=dict)  # the agent stage (tools/scenarios.py)
    evidence: Evidence = Evidence()
    fairness: Fairness | None = None
    routing: Routing = Routing()

    def higher_is_better(self, metric: str) -> bool:
        """A metric's direction: its threshold's, else lower is better only for known error metrics."""
        limit = self.thresholds.get(metric)
        return limit.higher_is_better if limit is not None else metric not in LOWER_IS_BETTER

    def bound_of(self, metric: str) -> Bound:
        """The metric's threshold, or a bound that only knows the metric's direction."""
        return self.thresholds.get(metric) or Bound(
            f"{KPIS}: {metric}", direction="higher" if self.higher_is_better(metric) else "lower"
        )

    def without(self, skipped: list[str] | tuple[str, ...], instead: str | None = None) -> Kpis:
        """These settings with the metrics an evaluation could not compute (``skipped``: a project
        with no held-out pairs) left out of the thresholds and non-inferiority; a skipped primary
        metric becomes ``instead`` (None: no primary metric, so no baseline comparison)."""
        if not skipped:
            return self
        return replace(
            self,
            thresholds={k: v for k, v in self.thresholds.items() if k not in skipped},
            non_inferiority={k: v for k, v in self.non_inferiority.items() if k not in skipped},
            primary_metric=instead if self.primary_metric in skipped else self.primary_metric,
        )


KPIS = KPIS_FILE
LOWER_IS_BETTER = {"rmse", "mae", "mse", "mape", "log_loss", "brier", "answer_perplexity"}


def _tolerance(raw: Any, where: str) -> float:
    tolerance = _number(raw, where)
    if tolerance < 0:
        raise SettingsError(f"{where} must be 0 or more, got {tolerance}")
    return tolerance


def parse(raw: dict[str, Any]) -> Kpis:
    """The ``Kpis`` of ``business/kpis.yaml`` as read, its keys and types already checked by
    ``settings.py``: every bound and tolerance checked here, with the file and key named."""
    fairness, minimum = raw.get("fairness") or {}, (raw.get("fairness") or {}).get("min_group_rows")
    guardrails, families = grouped_bounds(raw.get("guardrails"), "families", f"{KPIS}: guardrails")
    margin = raw.get("baseline_margin")
    return Kpis(
        primary_metric=None if raw.get("primary_metric") is None else str(raw["primary_metric"]),
        thresholds=bounds(raw.get("thresholds"), f"{KPIS}: thresholds"),
        baseline_margin=None if margin is None else _tolerance(margin, f"{KPIS}: baseline_margin"),
        non_inferiority={
            str(name): _tolerance(value, f"{KPIS}: non_inferiority.{name}")
            for name, value in (raw.get("non_inferiority") or {}).items()
        },
        max_regression=_tolerance(
            (raw.get("ci") or {}).get("max_regression", 0.0), f"{KPIS}: ci.max_regression"
        ),
        service=bounds(raw.get("service"), f"{KPIS}: service"),
        monitoring=bounds(raw.get("monitoring"), f"{KPIS}: monitoring"),
        guardrails=guardrails,
        guardrail_families=families,
        agent=bounds(raw.get("agent"), f"{KPIS}: agent"),
        evidence=Evidence(**(raw.get("evidence") or {})),
        routing=Routing(
            min_questions=int((raw.get("routing") or {}).get("min_questions", 5)),
            non_inferiority={
                str(name): _tolerance(value, f"{KPIS}: routing.non_inferiority.{name}")
                for name, value in ((raw.get("routing") or {}).get("non_inferiority") or {}).items()
            },
        ),
        fairness=Fairness(
            sensitive_feature=str(fairness["sensitive_feature"]),
            max_difference={
                str(metric): bound({"max": limit}, f"{KPIS}: fairness.max_difference.{metric}").max
                for metric, limit in (fairness.get("max_difference") or {}).items()
            },
            min_group_rows=MIN_GROUP_ROWS
            if minimum is None
            else minimum,  # None: the first run has not profiled it
        )
        if fairness.get("sensitive_feature")
        else None,
    )


def check_metric_names(kpis: Kpis, available: tuple[str, ...] | list[str]) -> None:
    """Every metric ``business/kpis.yaml`` names is one this model computes."""
    named = [(f"thresholds.{name}", name) for name in kpis.thresholds]
    named += [(f"non_inferiority.{name}", name) for name in kpis.non_inferiority]
    if kpis.primary_metric is not None:
        named.insert(0, ("primary_metric", kpis.primary_metric))
    else:
        raise SettingsError(f"{KPIS}: primary_metric is missing: name one of {', '.join(available)}")
    for key, name in named:
        if name not in available:
            raise SettingsError(
                f"{KPIS}: {key}: {name!r} is not computed for this model; use one of {', '.join(available)}"
            )
