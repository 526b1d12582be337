"""The stages that run on the cluster: ``collect`` (a CSV), ``validate``, ``prepare`` and ``train``.

Each reads and writes what its one-machine version does (``data/collect.py``, ``data/prepare.py``,
``training/train.py``), with the same settings and the same checks; tables are Parquet datasets
(folders of parts) so that no single process holds them.
"""

from __future__ import annotations

from typing import Any

from ..config import path, project_root
from ..errors import SettingsError
from .client import connect, describe, settings


def collect(params: dict[str, Any]) -> str:
    """The CSV (a path, a glob or an http(s) URL) read in blocks and written to ``paths.raw`` as a
    Parquet dataset. A classifier's labels are read as text and kept as written."""
    import dask.dataframe as dd

    from ..data.collect import resolve

    root, out = project_root(), path(params, "raw")
    target = params["data"]["target"]
    dtype = {target: "string"} if params["task"] == "classification" else None
    with connect(params) as client:
        frame = dd.read_csv(
            str(resolve(str(params["data"]["location"]), root)), dtype=dtype, blocksize="64MB"
        )
        frame.to_parquet(out, write_index=False, overwrite=True)
        rows = len(dd.read_parquet(out))
        return f"collected {rows} rows x {len(frame.columns)} columns on {describe(client)} -> {out.relative_to(root)}"


def prepare(params: dict[str, Any]) -> str:
    """``data/prepare.py`` on the cluster: duplicates and unlabelled rows dropped, a seeded random
    split of each partition (not stratified), both sides written as Parquet datasets."""
    import dask
    import dask.dataframe as dd

    from ..data.prepare import check_labelled, check_target

    target, options = params["data"]["target"], params["prepare"]
    with connect(params) as client:
        frame = dd.read_parquet(path(params, "raw"))
        check_target(frame.columns, target)
        if options.get("drop_duplicates", True):
            frame = frame.drop_duplicates(split_out=frame.npartitions)
        labelled = frame.dropna(subset=[target])
        test_size = float(options["test_size"])
        train, test = labelled.random_split([1 - test_size, test_size], random_state=int(options["seed"]))
        total, kept = dask.compute(frame.shape[0], labelled.shape[0])
        check_labelled(kept, target)
        for key, side in (("train", train), ("test", test)):
            side.to_parquet(path(params, key), write_index=False, overwrite=True)
        rows = {key: len(dd.read_parquet(path(params, key))) for key in ("train", "test")}
        note = f"; {total - kept} rows without a target left out" if total > kept else ""
        return f"prepared {rows['train']} train / {rows['test']} test rows on {describe(client)}{note}"


ROW_COUNT = "expect_table_row_count_to_be_between"


def validate(params: dict[str, Any], suite_dict: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``data/validate.py`` on the cluster: the workers check each partition of ``paths.raw``
    against the suite, and the counts are added up (``combine``). Returns the summary
    ``expectations.run_suite`` gives and the cluster's description."""
    import dask
    import dask.dataframe as dd

    from ..expectations import check, summarize

    with connect(params) as client:
        parts = dd.read_parquet(path(params, "raw")).to_delayed()
        found = dask.compute(*(dask.delayed(check)(part, suite_dict) for part in parts))
        return summarize(combine(found)), describe(client)


def combine(found: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each expectation's results on every partition as one, as on the whole table: a column's
    values checked one by one add their counts up (the share of unexpected values is then compared
    with the expectation's ``mostly``), the row count adds the rows up, and any other check holds
    when it holds on every partition."""
    from ..expectations import NOT_NULL

    combined = []
    for items in zip(*found, strict=True):
        first = items[0]
        if first["type"] == ROW_COUNT:
            rows = sum(int(item["observed_value"] or 0) for item in items)
            low, high = first["kwargs"].get("min_value"), first["kwargs"].get("max_value")
            held = (low is None or rows >= low) and (high is None or rows <= high)
            combined.append({**first, "success": held, "observed_value": rows})
            continue
        counted = all(
            item["element_count"] is not None and item["unexpected_count"] is not None for item in items
        )
        if not counted or any(item["exception"] for item in items):
            combined.append(next((item for item in items if not item["success"]), first))
            continue
        elements = sum(item["element_count"] for item in items)
        missing = sum(item["missing_count"] or 0 for item in items)
        unexpected = sum(item["unexpected_count"] for item in items)
        checked = elements if first["type"] == NOT_NULL else elements - missing
        share = 100 * unexpected / checked if checked else 0.0
        mostly = float(first["kwargs"].get("mostly") or 1.0)
        combined.append(
            {
                **first,
                "success": unexpected == 0 or (checked - unexpected) / checked >= mostly,
                "element_count": elements,
                "missing_count": missing,
                "unexpected_count": unexpected,
                "unexpected_percent": share,
                "sample": [value for item in items for value in item["sample"]][:20],
            }
        )
    return combined


def train(params: dict[str, Any]):
    """``training/train.py`` on the cluster. Returns ``(model, sample of the raw rows, features)``:
    the preprocessing fitted on a seeded sample of ``engine.sample_rows`` rows and applied to every
    partition by the workers, LightGBM trained on all of them (``lightgbm.dask``), and the
    pipeline of the two as one scikit-learn model, as ``train.fit`` makes on one machine."""
    import warnings

    import dask
    import dask.array as da
    import dask.dataframe as dd
    from pandas.api.types import is_numeric_dtype
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from ..data import prepare
    from ..data import roles as column_roles
    from ..data.prepare import features_of, with_features
    from ..training.estimators import build_pipeline
    from ..training.train import hyperparameters_of

    target, task, options = params["data"]["target"], params["task"], params["train"]
    if options["estimator"] != "lightgbm":
        raise SettingsError(
            f"params.yaml: train.estimator: {options['estimator']!r} does not train on a Dask "
            f"cluster; use lightgbm (engine.name: dask), or engine.name: local"
        )
    engine = settings(params)
    with connect(params) as client:
        frame = dd.read_parquet(path(params, "train"))
        raw = [c for c in frame.columns if c != target]
        rows = int(frame.shape[0].compute())
        share = min(1.0, int(engine["sample_rows"]) / max(rows, 1))
        sample = frame.sample(frac=share, random_state=int(params["prepare"]["seed"])).compute()
        featured = with_features(sample, target)
        roles = column_roles.load(params, [c for c in featured.columns if c != target])
        features = column_roles.features(roles)
        derived = len(featured.columns) > len(sample.columns)
        hyperparameters, where = hyperparameters_of(task, options)
        local = build_pipeline(
            task,
            "lightgbm",
            hyperparameters,
            featured[features],
            dates=column_roles.dates(roles),
            where=where,
        )
        preprocess = local.named_steps["preprocess"].fit(featured[features])

        adds = prepare.derive  # sent to the workers as the stage has it (cloudpickle)

        def transformed(part):
            return preprocess.transform(with_features(part, target, adds)[features])

        # Arrays, not frames: the model is then called with arrays wherever it serves, as on one
        # machine. The inputs and labels of a partition come from the same task (one read of it),
        # with its length known, so the two line up.
        parts = frame.to_delayed()
        lengths = dask.compute(*(dask.delayed(len)(part) for part in parts))
        width = preprocess.transform(featured[features].head(2)).shape[1]
        text = task == "classification" and not is_numeric_dtype(sample[target])
        label_type = object if text else sample[target].to_numpy().dtype
        inputs = da.concatenate(
            [
                da.from_delayed(dask.delayed(transformed)(part[raw]), shape=(size, width), dtype="float64")
                for part, size in zip(parts, lengths, strict=True)
            ]
        )
        labels = da.concatenate(
            [  # text labels as Python strings, as on one machine
                da.from_delayed(dask.delayed(_labels)(part, target, text), shape=(size,), dtype=label_type)
                for part, size in zip(parts, lengths, strict=True)
            ]
        )
        learner = _dask_learner(task, local[-1].get_params())
        with warnings.catch_warnings():  # LightGBM sets each worker's threads itself and says so
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            learner.fit(inputs, labels)
        estimator = learner.to_local()
        steps = [("preprocess", preprocess), ("model", estimator)]
        if derived:  # fitted as on one machine: it learns the raw columns' names
            steps.insert(0, ("derive", FunctionTransformer(features_of).fit(sample[raw])))
        model = Pipeline(steps)
        if task != "classification":
            from ..training.metrics import target_range

            model.target_range_ = target_range(dd.compute(frame[target].min(), frame[target].max()))
        print(f"trained on {rows} rows on {describe(client)}")
    return model, sample, features


def _labels(part, target: str, text: bool):
    """A partition's labels as an array: text as Python strings, numbers as they are."""
    values = part[target]
    return values.astype(object).to_numpy() if text else values.to_numpy()


def _dask_learner(task: str, hyperparameters: dict[str, Any]):
    """LightGBM's Dask estimator with the hyperparameters the local one was checked with (each
    worker trains on its own threads)."""
    from lightgbm import DaskLGBMClassifier, DaskLGBMRegressor

    learner = DaskLGBMClassifier if task == "classification" else DaskLGBMRegressor
    given = {key: value for key, value in hyperparameters.items() if key != "n_jobs"}  # Dask sets the threads
    return learner(**{"verbose": -1, **given})
