"""Data contracts, shared by both profiles: run a Great Expectations suite on a DataFrame and say
what failed in one readable line per expectation.

Great Expectations is imported by the functions that need it (it costs seconds to import).
"""

from __future__ import annotations

import os
from typing import Any


def _quiet_context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_suite(frame, suite_dict: dict[str, Any]) -> dict[str, Any]:
    """Validate ``frame`` against ``suite_dict``; return a deterministic summary."""
    return summarize(check(frame, suite_dict), frame)


def check(frame, suite_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """What each expectation of ``suite_dict`` found in ``frame``, in the suite's order: ``type``,
    ``column``, ``kwargs``, ``success`` and, as Great Expectations reports them, ``element_count``,
    ``missing_count``, ``unexpected_count``, ``unexpected_percent``, ``sample`` (unexpected values),
    ``observed_value`` and ``exception``. (The Dask engine checks each partition and adds them up.)"""
    import great_expectations as gx

    context = _quiet_context()
    suite = context.suites.add(gx.ExpectationSuite(**suite_dict))
    batch = (
        context.data_sources.add_pandas("raw")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("all")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="raw", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    found = []
    for item in result.results:
        config, details = item.expectation_config, item.result or {}
        found.append(
            {
                "type": config.type,
                "column": config.kwargs.get("column"),
                "kwargs": {k: v for k, v in config.kwargs.items() if k not in ("column", "batch_id")},
                "success": bool(item.success),
                "element_count": details.get("element_count"),
                "missing_count": details.get("missing_count"),
                "unexpected_count": details.get("unexpected_count"),
                "unexpected_percent": details.get("unexpected_percent"),
                "sample": [_plain(v) for v in details.get("partial_unexpected_list") or []],
                "observed_value": _plain(details.get("observed_value")),
                "exception": (item.exception_info or {}).get("exception_message"),
            }
        )
    return found


def summarize(found: list[dict[str, Any]], frame=None) -> dict[str, Any]:
    """The summary ``validate`` writes: what failed, and what passed within its tolerance."""
    failures, tolerated = [], []
    for item in found:
        if item["success"]:
            if item["unexpected_count"] and item["type"] != NOT_NULL:  # within its `mostly`
                tolerated.append(
                    {
                        "expectation": item["type"],
                        "column": item["column"],
                        "unexpected_count": item["unexpected_count"],
                        "unexpected_percent": round(float(item["unexpected_percent"] or 0), 3),
                        "sample_unexpected": sorted({str(v) for v in item["sample"]})[:5],
                    }
                )
            continue
        failure = {
            "expectation": item["type"],
            "column": item["column"],
            "kwargs": item["kwargs"],
            "unexpected_count": item["unexpected_count"],
            "sample_unexpected": item["sample"][:5],
            "observed_value": item["observed_value"],
            "exception": item["exception"],
        }
        failures.append(_with_text_in_numbers(failure, frame) if frame is not None else failure)
    return {
        "success": not failures,
        "evaluated": len(found),
        "failed": len(failures),
        "failures": failures,
        "tolerated": tolerated,
    }


def tolerated_line(found: dict[str, Any]) -> str:
    """One line for values an expectation let through within its tolerance: a new category, a
    value past the profiled range."""
    what = "values outside its known set" if found["expectation"] == IN_SET else "unexpected values"
    return (
        f"column {found['column']!r}: {found['unexpected_count']} {what} ({found['unexpected_percent']}% "
        f"of the rows, within the contract's tolerance), e.g. {', '.join(map(repr, found['sample_unexpected']))}"
    )


# The expectation types the profiled suites use (data/suite.py) and the messages read.
RANGE, IN_SET, NOT_NULL = (
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_null",
)


def not_numbers(values):
    """The values of a column (a pandas Series) that are present but are not numbers ("eighty")."""
    import pandas as pd

    return values[values.notna() & pd.to_numeric(values, errors="coerce").isna()]


def _with_text_in_numbers(failure: dict[str, Any], frame) -> dict[str, Any]:
    """A range check on a column that now holds text ("eighty" among heart rates) gets no sample
    from Great Expectations: the values that are not numbers are the sample."""
    column = failure["column"]
    if failure["sample_unexpected"] or failure["expectation"] != RANGE or column not in frame:
        return failure
    text = not_numbers(frame[column])
    if text.empty:
        return failure
    shown = [str(v)[:40] for v in text.drop_duplicates().head(5)]
    return {**failure, "unexpected_count": len(text), "sample_unexpected": shown, "not_numbers": True}


def _plain(value: Any) -> Any:
    """JSON-friendly value (NaN becomes None)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def describe(failure: dict[str, Any]) -> str:
    where = f" on column {failure['column']!r}" if failure["column"] else ""
    if failure.get("not_numbers"):
        detail = (
            f"{failure['unexpected_count']} values that are not numbers, e.g. {failure['sample_unexpected']}"
        )
    elif failure["sample_unexpected"]:
        detail = f"{failure['unexpected_count']} unexpected values, e.g. {failure['sample_unexpected']}"
    elif failure["exception"]:
        detail = f"could not be evaluated: {failure['exception']}"
    else:
        detail = f"observed {failure['observed_value']!r}"
    return f"{failure['expectation']}{where} ({failure['kwargs']}): {detail}"
