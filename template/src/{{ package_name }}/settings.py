"""Typed settings: ``params.yaml`` and ``business/kpis.yaml`` checked whole when they are loaded.

A misspelt key, a value of the wrong type or out of range is an error that names the file, the key
and what is expected, before any stage does work. Bounds (``{min: x}``, ``{max: y}``) are checked
by ``gates.py``, the one place that knows what a bound is.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from .errors import SettingsError, shorten
from .files import KPIS_FILE, PARAMS_FILE


def _models():
    """The pydantic models, built on first use (pydantic is imported only by commands that load settings)."""
    from pydantic import BaseModel, ConfigDict, Field, model_validator

    strict = ConfigDict(extra="forbid")

    class Data(BaseModel):
        model_config = strict
        source: Literal["sample", "csv"]
        dataset: str | None = None
        location: str | None = None
        target: str = Field(min_length=1)
        positive_class: str | int | float | bool | None = None

        @model_validator(mode="after")
        def _source_needs(self):
            if self.source == "sample" and not self.dataset:
                raise ValueError("source sample needs dataset (breast_cancer or diabetes)")
            if self.source == "csv" and not self.location:
                raise ValueError("source csv needs location (a path or an http(s) URL)")
            return self

    class Prepare(BaseModel):
        model_config = strict
        test_size: float = Field(gt=0, lt=1)
        seed: int
        drop_duplicates: bool = True

    class Train(BaseModel):
        model_config = strict
        estimator: str = Field(min_length=1)
        hyperparameters: dict[str, Any] | None = None

    class Tracking(BaseModel):
        model_config = strict
        uri: str = Field(min_length=1)
        experiment: str = Field(min_length=1)
        model_name: str = Field(min_length=1)

    class Serving(BaseModel):
        model_config = strict
        host: str = "127.0.0.1"
        port: int = Field(8000, ge=1, le=65535)
        max_body_bytes: int = Field(1_048_576, gt=0)
        model_uri: str = ""

    class LoadTest(BaseModel):
        model_config = strict
        requests: int = Field(400, gt=0)
        concurrency: int = Field(4, gt=0)

    class Drift(BaseModel):
        model_config = strict
        sample_rows: int = Field(100_000, ge=1_000)  # each side of make drift, at most (seeded)

    class Engine(BaseModel):  # defaults: cluster/client.py
        model_config = strict
        name: Literal["local", "dask"] = "local"
        scheduler: str = Field("local", min_length=1)  # local, or a scheduler's address
        workers: int = Field(2, ge=1)
        threads_per_worker: int = Field(1, ge=1)
        memory_limit: str | int = "auto"
        sample_rows: int = Field(100_000, ge=100)  # rows the preprocessing is fitted on

    class Params(BaseModel):
        model_config = strict
        task: Literal["classification", "regression"]
        data: Data
        prepare: Prepare
        train: Train
        tracking: Tracking
        paths: dict[str, str]
        serving: Serving = Serving()
        loadtest: LoadTest = LoadTest()
        drift: Drift = Drift()
        engine: Engine = Engine()

    # The llmops profile's params.yaml (``profile: llmops``): the shared sections plus its own.
    class TextData(BaseModel):
        model_config = strict
        documents: str = Field(min_length=1)
        pairs: str = Field(min_length=1)
        base_url: str = ""

    class Split(BaseModel):
        model_config = strict
        eval_fraction: float = Field(gt=0, lt=1)
        seed: int

    class Length(BaseModel):  # a range of characters, not a gate: both ends, no direction
        model_config = strict
        min: int = Field(ge=0)
        max: int = Field(gt=0)

        @model_validator(mode="after")
        def _ordered(self):
            if self.min > self.max:
                raise ValueError(f"min ({self.min}) is above max ({self.max})")
            return self

    class Contract(BaseModel):
        model_config = strict
        instruction_chars: Length
        answer_chars: Length
        document_chars: Length

    class Privacy(BaseModel):
        model_config = strict
        # {ENTITY: block|redact}; a list means block for each
        entities: (
            Annotated[dict[str, Literal["block", "redact"]], Field(min_length=1)]
            | Annotated[list[str], Field(min_length=1)]
        )
        min_score: float = Field(0.4, ge=0, le=1)
        allow: str = ""  # the reviewed allow-list file

    class Tiny(BaseModel):
        model_config = strict
        vocab: int = Field(1024, ge=300)
        width: int = Field(64, ge=16, multiple_of=16)
        layers: int = Field(2, ge=1)
        seed: int = 42

    class Generation(BaseModel):
        model_config = strict
        max_new_tokens: int = Field(gt=0)
        temperature: float = Field(0.0, ge=0)
        batch_size: int = Field(8, gt=0)

    class Judge(BaseModel):
        model_config = strict
        enabled: bool = False
        endpoint: str = ""
        model: str = ""

        @model_validator(mode="after")
        def _complete_when_enabled(self):
            if self.enabled and not (self.endpoint.startswith(("http://", "https://")) and self.model):
                raise ValueError("enabled needs an http(s) endpoint and a model")
            return self

    class Lora(BaseModel):
        model_config = strict
        r: int = Field(gt=0)
        alpha: int = Field(gt=0)
        dropout: float = Field(0.0, ge=0, lt=1)
        target_modules: Annotated[list[str], Field(min_length=1)] | Literal["all-linear"]
        modules_to_save: list[str] = []

    class Finetune(BaseModel):
        model_config = strict
        lora: Lora
        epochs: int = Field(gt=0)
        batch_size: int = Field(gt=0)
        learning_rate: float = Field(gt=0)
        max_length: int = Field(gt=8)
        seed: int = 42

    class Model(BaseModel):
        model_config = strict
        base: str = Field(min_length=1)
        provider: Literal["local", "openai"] = "local"
        endpoint: str = ""
        tiny: Tiny = Tiny()

    class Chunking(BaseModel):
        model_config = strict
        size: int = Field(gt=0)
        overlap: int = Field(ge=0)

        @model_validator(mode="after")
        def _overlap_below_size(self):
            if self.overlap >= self.size:
                raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
            return self

    class Retrieval(BaseModel):
        model_config = strict
        embedder: str = Field(min_length=1)
        dimensions: int = Field(1024, ge=16)
        store: Literal["flat", "qdrant"] = "flat"
        url: str = ""
        top_k: int = Field(gt=0)

    class LlmServing(BaseModel):
        model_config = strict
        host: str = "127.0.0.1"
        port: int = Field(8000, ge=1, le=65535)
        max_body_bytes: int = Field(1_048_576, gt=0)
        backend: Literal["application", "upstream"] = "application"
        model_uri: str = ""
        upstream_url: str = ""
        upstream_model: str = ""
        trace_sample: float = Field(0.0, ge=0, le=1)
        max_tokens: int | None = Field(None, ge=1)  # None: generation.max_new_tokens
        context_tokens: int = Field(0, ge=0)  # 0: the model's own context
        retention_days: int = Field(30, ge=0)  # request log and traces; 0: kept

    class LlmLoadtest(BaseModel):
        model_config = strict
        requests: int = Field(40, ge=1)
        concurrency: int = Field(4, ge=1)

    class LlmParams(BaseModel):
        model_config = strict
        profile: Literal["llmops"]
        data: TextData
        split: Split
        contract: Contract
        privacy: Privacy
        model: Model
        chunking: Chunking
        generation: Generation
        judge: Judge = Judge()
        retrieval: Retrieval | None = None
        finetune: Finetune | None = None
        tracking: Tracking
        paths: dict[str, str]
        serving: LlmServing = LlmServing()
        loadtest: LlmLoadtest = LlmLoadtest()

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

    class Fairness(BaseModel):
        model_config = strict
        sensitive_feature: str = Field(min_length=1)
        max_difference: dict[str, float] = {}
        min_group_rows: int | None = Field(20, ge=1)  # None: a placeholder of the first run (20)

    class Evidence(BaseModel):  # defaults: gates.EVIDENCE
        model_config = strict
        confidence: float = Field(0.95, ge=0.5, lt=1)
        resamples: int = Field(200, ge=20, le=100_000)
        seed: int = 0
        min_test_rows: int = Field(30, ge=1)
        min_class_rows: int = Field(5, ge=1)

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
        evidence: Evidence | None = None

    return Params, Kpis, LlmParams


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (a typo?)"
    if error["type"] == "missing":
        return f"{where}: missing"
    shown = shorten(repr(error.get("input")))
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message[0].lower() + message[1:]} (got {shown})"


def validate(kind: Literal["params", "kpis"], raw: Any) -> dict[str, Any]:
    """``raw`` checked against its model; returns it unchanged (a plain dict) or raises SettingsError."""
    from pydantic import ValidationError

    from . import gates

    file = PARAMS_FILE if kind == "params" else KPIS_FILE
    if not isinstance(raw, dict):
        raise SettingsError(f"{file}: expected a mapping of settings, got {type(raw).__name__}")
    params_model, kpis_model, llm_params_model = _models()
    model = kpis_model if kind == "kpis" else llm_params_model if "profile" in raw else params_model
    try:
        model.model_validate(raw)
    except ValidationError as error:
        problems = [_describe(e) for e in error.errors(include_url=False)]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SettingsError(f"{file}: " + "; ".join(problems[:3]) + more) from None
    if kind == "kpis":  # every bound, whichever gate reads it
        gates.thresholds(raw)
        gates.non_inferiority(raw)
        gates.bounds(raw.get("service"), f"{KPIS_FILE}: service")
        gates.grouped_bounds(raw.get("guardrails"), "families", f"{KPIS_FILE}: guardrails")
        gates.bounds(raw.get("monitoring"), f"{KPIS_FILE}: monitoring")
    return raw
