"""Traces in OpenTelemetry's terms: the GenAI semantic conventions on every traced request, and
export over OTLP to any backend beside MLflow's trace store.

``serving.trace_sample`` of the requests are traced (MLflow's tracing, built on OpenTelemetry). Each
span carries the conventions' attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model`` and its parameters, ``gen_ai.response.id``, ``gen_ai.response.model``,
``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens``/``output_tokens``) as plain
OpenTelemetry attributes, beside the service's own (sources, rules, cost, variant, cached_from).

``serving.otlp_endpoint`` (or the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) sends the same
spans to an OTLP/HTTP collector, e.g. ``http://collector:4318/v1/traces`` (Langfuse, Phoenix, Jaeger,
Grafana Tempo, a vendor's APM), while MLflow's store keeps them too (MLflow's dual export,
``MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT``);
``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` carries a key. ``OTEL_SERVICE_NAME`` defaults to
``tracking.model_name``.
"""

from __future__ import annotations

import os
from typing import Any


def configure(params: dict[str, Any]) -> str | None:
    """Point MLflow's tracing at the OTLP collector the settings name (before the first span);
    returns the endpoint in use (None: MLflow's store only)."""
    configured = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (params.get("serving") or {}).get(
        "otlp_endpoint", ""
    )
    if not configured:
        return None
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = configured
    os.environ.setdefault("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    os.environ.setdefault("MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT", "true")  # MLflow's store keeps them too
    os.environ.setdefault("OTEL_SERVICE_NAME", params["tracking"]["model_name"])
    import mlflow.tracing

    mlflow.tracing.reset()  # a tracer set up earlier in this process takes the settings at its next span
    return configured


def genai_attributes(service, chat, record: dict[str, Any]) -> dict[str, Any]:
    """The GenAI semantic conventions' attributes of one answered request."""
    asked = chat.request.asked
    upstream = (service.params.get("serving") or {}).get("backend") == "upstream"
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai" if upstream else "transformers",
        "gen_ai.request.model": chat.request.model or service.name,
        "gen_ai.response.model": str(service.params["model"]["base"]),
        "gen_ai.response.id": chat.ident,
        "gen_ai.response.finish_reasons": [record["finish_reason"]],
        "gen_ai.usage.input_tokens": int(record["prompt_tokens"]),
        "gen_ai.usage.output_tokens": int(record["completion_tokens"]),
    }
    for name, value in (
        ("max_tokens", asked.max_new_tokens),
        ("temperature", asked.temperature),
        ("top_p", asked.top_p),
        ("seed", asked.seed),
    ):
        if value is not None:
            attributes[f"gen_ai.request.{name}"] = value
    return attributes


def set_plain(span, attributes: dict[str, Any]) -> None:
    """Attributes as OpenTelemetry keeps them (MLflow's ``set_attributes`` stores each value as
    JSON text, which a GenAI backend would not read as a number or a list)."""
    otel = getattr(span, "_span", None)  # the OpenTelemetry span inside MLflow's
    if otel is None:
        span.set_attributes(attributes)
        return
    for key, value in attributes.items():
        otel.set_attribute(key, value)
