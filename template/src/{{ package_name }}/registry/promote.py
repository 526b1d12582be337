"""Promotion: move the ``champion`` alias to the ``challenger`` when it has earned it.

The challenger must have passed the quality gate, and must not be worse than the current
champion on the primary metric named in ``business/kpis.yaml``.
"""

from __future__ import annotations

from typing import Any

from .. import gates
from ..config import load_kpis, load_params
from ..errors import PromotionError
from . import tracking


def promote(settings: dict[str, Any], kpis: gates.Kpis) -> str:
    mlflow_client = tracking.client(settings)
    name, metric = settings["model_name"], kpis.primary_metric
    challenger = tracking.version_by_alias(mlflow_client, name, tracking.CHALLENGER)
    if challenger is None:
        raise PromotionError(f"model {name!r} has no {tracking.CHALLENGER!r} version: run the pipeline first")
    if challenger.tags.get("quality_gate") != "passed":
        raise PromotionError(f"{name} v{challenger.version} has not passed the quality gate")
    champion = tracking.version_by_alias(mlflow_client, name, tracking.CHAMPION)
    if champion is not None and champion.version == challenger.version:
        return f"{name} v{challenger.version} is already {tracking.CHAMPION}"
    if champion is not None:
        key = f"metric.{metric}"
        if key not in challenger.tags:
            raise PromotionError(
                f"{name} v{challenger.version} has no {metric} (business/kpis.yaml: primary_metric): "
                "run the pipeline again (make repro) so the challenger is evaluated on it"
            )
        if key not in champion.tags:
            raise PromotionError(
                f"champion v{champion.version} of {name} was evaluated without {metric} (the task or the "
                f"primary metric changed since): they cannot be compared. If the challenger should "
                f"replace it, move the alias by hand: mlflow's set_registered_model_alias or the UI "
                f"(model {name}, version {challenger.version}, alias {tracking.CHAMPION})"
            )
        new, old = float(challenger.tags[key]), float(champion.tags[key])
        if kpis.bound_of(metric).worse_by(new, old) > 0:
            raise PromotionError(
                f"{name} v{challenger.version} has {metric}={new}, worse than champion v{champion.version} ({old})"
            )
    mlflow_client.set_registered_model_alias(name, tracking.CHAMPION, challenger.version)
    return f"{name} v{challenger.version} is now {tracking.CHAMPION}"


def main(argv: list[str] | None = None) -> int:
    from ..cli import parser

    parser(__doc__, "promote").parse_args(argv)
    print(promote(load_params()["tracking"], load_kpis()))
    return 0
