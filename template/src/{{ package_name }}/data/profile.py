"""First run: profile the raw data into the settings a new project needs, where they are missing.

- the column roles (``paths.columns``): which columns the model learns from (``roles.py``);
- the data contract (``paths.suite``): the expectation suite (``suite.py``);
- the data-dependent defaults of ``business/kpis.yaml``: every value written there as
  ``null``/``{}`` with the comment ``# from the data on the first run`` (the primary metric and
  thresholds that suit the task and the number of classes, and fairness limits on the scale of
  the metric).

A file or value that is already there is never touched: they are yours to review, edit and commit.
Delete a file (or put the marker back) to profile it again; ``make suite`` re-profiles the contract.
"""

from __future__ import annotations

from typing import Any

from .. import firstrun
from ..config import KPIS_FILE, load_params, path, project_root
from ..errors import listed
from . import roles as column_roles
from .prepare import held_out, with_features
from .suite import build_suite, raw_roles, write_suite
from .table import read

MARKER = firstrun.FROM_THE_DATA


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.4g}"


def _bound(kind: str, value: float) -> str:
    """``{min: x}`` or ``{max: y}`` as YAML flow text."""
    return "{" + f"{kind}: {_fmt(value)}" + "}"


def kpi_defaults(labels, task: str, test_size: float) -> dict[str, list[str]]:
    """YAML lines for each placeholder key, derived from the labelled target values. ROC AUC is
    gated only when every class reaches the test split (``test_size`` of each)."""
    if task == "classification":
        counts = labels.astype(str).value_counts()
        classes = sorted(counts.index)
        chance = 1 / len(classes)
        auc = "roc_auc" if len(classes) == 2 else "roc_auc_ovr"
        shown = listed(classes, 6)
        rare = [c for c in classes if held_out(int(counts[c]), test_size) == 0]
        auc_line = f"  {auc}: {_bound('min', 0.65)}   # 0.5 is a random ranking"
        if rare:
            named = listed((f"{c!r} ({counts[c]} rows)" for c in rare), 3)
            auc_line = f"  # {auc}: {_bound('min', 0.65)}   not gated: the test split gets no row of {named}"
        fairness = ["accuracy: 0.25"] + (["selection_rate: 0.3"] if len(classes) == 2 else [])
        return {
            "primary_metric": [
                f"primary_metric: balanced_accuracy   # chance level {_fmt(chance)}: {len(classes)} classes ({shown})"
            ],
            "thresholds": [
                "thresholds:",
                f"  balanced_accuracy: {_bound('min', min(0.95, chance + 0.15))}   # chance + 0.15",
                auc_line,
            ],
            "max_difference": ["max_difference:", *(f"  {line}" for line in fairness)],
        }
    spread = float(labels.std())
    return {
        "primary_metric": ["primary_metric: r2"],
        "thresholds": [
            "thresholds:",
            "  r2: {min: 0.2}   # 0 is predicting the mean",
            f"  mae: {_bound('max', spread)}   # one standard deviation of the target",
        ],
        "max_difference": [
            "max_difference:",
            f"  mae: {_fmt(spread / 2)}   # half a standard deviation of the target",
        ],
    }


def fairness_rows(values, test_size: float) -> list[str]:
    """``min_group_rows`` the split can meet: the default (20) when the test split holds that many
    rows of two groups of the sensitive feature ``values`` (grouped as ``make fairness`` groups
    them), else the second-largest group's held-out rows, so that two groups are compared."""
    from ..deployment.fairness import groups_of
    from ..gates import MIN_GROUP_ROWS

    groups, _ = groups_of(values)
    held = sorted((held_out(int(rows), test_size) for rows in groups.value_counts()), reverse=True)
    second = held[1] if len(held) > 1 else 0
    if second >= MIN_GROUP_ROWS:
        return [f"min_group_rows: {MIN_GROUP_ROWS}"]
    return [
        f"min_group_rows: {max(second, 1)}   # the test split's second-largest group of "
        f"{values.name!r}: {MIN_GROUP_ROWS} would compare no two groups"
    ]


def too_little(labels, task: str, test_size: float, evidence) -> str | None:
    """What the test split of these labels will lack for the gate (``evidence`` of
    ``business/kpis.yaml``), as a warning; None: enough."""
    if task == "classification":
        counts = labels.astype(str).value_counts()
        held = {label: held_out(int(count), test_size) for label, count in counts.items()}
        rows, rarest = sum(held.values()), min(held, key=lambda label: (held[label], label))
        short = held[rarest] < evidence.min_class_rows
        rare = f", {held[rarest]} of its rarest class {rarest!r}" if short else ""
    else:
        rows, short, rare = held_out(len(labels), test_size), False, ""
    if rows >= evidence.min_test_rows and not short:
        return None
    return (
        f"the test split will hold {rows} rows{rare} (prepare.test_size {test_size}), and the gate "
        f"asks for {evidence.min_test_rows} rows and {evidence.min_class_rows} of each class "
        f"({KPIS_FILE}: evidence): no model can pass it on this data; add rows or raise prepare.test_size"
    )


def profile(params: dict[str, Any], frame) -> list[str]:
    """Write what is missing; returns one line per file written."""
    root, target, task = project_root(), params["data"]["target"], params["task"]
    done = []
    roles_file = path(params, "columns")
    if not roles_file.is_file():  # the roles cover the features prepare.derive adds too
        inferred = column_roles.infer(with_features(frame, target), target)
        for name in [n for n in inferred if n not in frame.columns]:
            inferred[name] = (inferred[name][0], f"{inferred[name][1]}; added by derive in data/prepare.py")
        roles_file.parent.mkdir(parents=True, exist_ok=True)
        roles_file.write_text(column_roles.to_yaml(inferred, params["paths"]["raw"]), encoding="utf-8")
        left = [f"{n} ({r})" for n, (r, _) in inferred.items() if r in column_roles.LEFT_OUT]
        done.append(
            f"column roles -> {params['paths']['columns']}: "
            f"{len(column_roles.features({n: r for n, (r, _) in inferred.items()}))} features"
            + (f"; left out: {', '.join(left)}" if left else "")
        )
    roles = raw_roles(params, frame)
    suite_file = path(params, "suite")
    if not suite_file.is_file():
        suite = build_suite(frame, target, task, roles)
        write_suite(suite, suite_file)
        done.append(f"data contract -> {params['paths']['suite']}: {len(suite['expectations'])} expectations")
    kpis_file = root / KPIS_FILE
    labels = frame[target].dropna()
    if kpis_file.is_file() and firstrun.keys(kpis_file.read_text(encoding="utf-8"), MARKER) and len(labels):
        defaults = kpi_defaults(labels, task, params["prepare"]["test_size"])
        sensitive = ((firstrun_kpis(kpis_file).get("fairness") or {}).get("sensitive_feature")) or ""
        if sensitive in frame.columns:
            defaults["min_group_rows"] = fairness_rows(frame[sensitive], params["prepare"]["test_size"])
        filled = firstrun.fill_file(kpis_file, MARKER, defaults)
        if filled:
            done.append(f"defaults from the data -> {KPIS_FILE}: {', '.join(filled)}")
    return done


def firstrun_kpis(file) -> dict[str, Any]:
    """``business/kpis.yaml`` as written, placeholders and all."""
    from ..config import parse_yaml

    return parse_yaml(file.read_text(encoding="utf-8")) or {}


def warnings_of(params: dict[str, Any], frame) -> list[str]:
    """What the data cannot give the gate, said before the pipeline spends its time."""
    from ..config import load_kpis

    labels = frame[params["data"]["target"]].dropna()
    found = too_little(labels, params["task"], params["prepare"]["test_size"], load_kpis().evidence)
    return [found] if found else []


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "profile").parse_args(argv)

    params = load_params()
    frame = read(path(params, "raw"), params)
    written = profile(params, frame)
    for line in written:
        print(f"profiled {line}")
    for line in warnings_of(params, frame):
        print(f"warning: {line}")
    if written:
        print("review these files and commit them: they are now your settings")
    else:
        print("column roles, data contract and business defaults already there: nothing to profile")
    return 0
