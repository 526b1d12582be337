"""Typed settings: ``params.yaml`` and ``business/kpis.yaml`` checked whole when they are loaded.

A misspelt key, a value of the wrong type or out of range is an error that names the file, the key
and what is expected, before any stage does work. Bounds (``{min: x}``, ``{max: y}``) are checked
by ``gates.py``, the one place that knows what a bound is: ``business/kpis.yaml`` comes out of here
as a ``gates.Kpis``, parsed once.
"""

from __future__ import annotations

from typing import Any, Literal

from .errors import SettingsError, shorten
from .files import KPIS_FILE, PARAMS_FILE


def _models():
    """The pydantic models, built on first use (pydantic is imported only by commands that load settings)."""
    from pydantic import BaseModel, ConfigDict, Field

    strict = ConfigDict(extra="forbid")

    class Tracking(BaseModel):
        model_config = strict
        uri: str = Field(min_length=1)
        experiment: str = Field(min_length=1)
        model_name: str = Field(min_length=1)

    class Ci(BaseModel):
        model_config = strict
        max_regression: float = Field(0.0, ge=0)

    class Monitoring(BaseModel):
        model_config = strict
        drift_share: dict[str, Any] | None = None  # tabular: the share of drifted input columns
        # llmops (monitoring/queries.py): the chat service's production requests
        query_drift_share: dict[str, Any] | None = None
        guardrail_trigger_rate: dict[str, Any] | None = None
        cost_per_day: dict[str, Any] | None = None
        grounded_share: dict[str, Any] | None = None
        wrongly_blocked_share: dict[str, Any] | None = None
        tool_error_rate: dict[str, Any] | None = None  # the agent (tools/agent.py)
        steps_per_request: dict[str, Any] | None = None
        approval_wait_s: dict[str, Any] | None = None
        online_faithfulness: dict[str, Any] | None = None  # monitoring/online.py: a sample of the answers
        online_relevance: dict[str, Any] | None = None

    class Fairness(BaseModel):
        model_config = strict
        sensitive_feature: str = Field(min_length=1)
        max_difference: dict[str, float] = {}
        min_group_rows: int | None = Field(20, ge=1)  # None: a placeholder of the first run (20)

    class Evidence(BaseModel):  # defaults: gates.Evidence
        model_config = strict
        confidence: float = Field(0.95, ge=0.5, lt=1)
        resamples: int = Field(200, ge=20, le=100_000)
        seed: int = 0
        min_test_rows: int = Field(30, ge=1)
        min_class_rows: int = Field(5, ge=1)

    class Routing(BaseModel):  # llmops (chat/routing.py): the evidence a cheaper route's gate needs
        model_config = strict
        min_questions: int = Field(5, ge=1)
        non_inferiority: dict[str, Any] = {}  # metric: tolerance (gates.py checks the values)

    class Kpis(BaseModel):
        model_config = strict
        objective: str | None = None
        owner: str | None = None
        key_results: list[str] | None = None
        primary_metric: str | None = None
        thresholds: dict[str, Any] | None = {}  # None: only placeholders so far (firstrun.py)
        baseline_margin: float | None = Field(None, ge=0)
        non_inferiority: dict[str, Any] = {}  # metric: tolerance (gates.py checks the values)
        ci: Ci = Ci()
        service: dict[str, Any] = {}
        monitoring: Monitoring = Monitoring()
        fairness: Fairness | None = None
        guardrails: dict[str, Any] = {}
        agent: dict[str, Any] = {}  # the agent stage's bounds (tools/scenarios.py)
        evidence: Evidence | None = None
        routing: Routing | None = None

    from .params import params_model

    return params_model(strict, Tracking), Kpis


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (a typo?)"
    if error["type"] == "missing":
        return f"{where}: missing"
    shown = shorten(repr(error.get("input")))
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message[0].lower() + message[1:]} (got {shown})"


def validate(kind: Literal["params", "kpis"], raw: Any) -> Any:
    """``raw`` checked against its model, or a SettingsError: params come back unchanged (a plain
    dict), KPIs as a ``gates.Kpis``."""
    from . import gates

    file = PARAMS_FILE if kind == "params" else KPIS_FILE
    if not isinstance(raw, dict):
        raise SettingsError(f"{file}: expected a mapping of settings, got {type(raw).__name__}")
    params_model, kpis_model = _models()
    checked(kpis_model if kind == "kpis" else params_model, raw, file)
    return gates.parse(raw) if kind == "kpis" else raw


def checked(model, raw: Any, file: str):
    """``raw`` validated by the pydantic ``model``, or a SettingsError naming ``file``, each wrong
    key and what is expected (the first three): one wording for every settings file."""
    from pydantic import ValidationError

    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors(include_url=False)]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SettingsError(f"{file}: " + "; ".join(problems[:3]) + more) from None


def kpis(raw: dict[str, Any]):
    """A mapping written like ``business/kpis.yaml``, checked and parsed: a ``gates.Kpis``."""
    return validate("kpis", raw)
