"""The model: preprocessing plus an estimator chosen by name in ``params.yaml``."""

from __future__ import annotations

from typing import Any

ESTIMATORS = {
    "classification": {
        "logistic_regression": "sklearn.linear_model:LogisticRegression",
        "random_forest": "sklearn.ensemble:RandomForestClassifier",
        "gradient_boosting": "sklearn.ensemble:HistGradientBoostingClassifier",
        "lightgbm": "lightgbm:LGBMClassifier",  # installed with engine: dask (or uv add lightgbm)
    },
    "regression": {
        "ridge": "sklearn.linear_model:Ridge",
        "random_forest": "sklearn.ensemble:RandomForestRegressor",
        "gradient_boosting": "sklearn.ensemble:HistGradientBoostingRegressor",
        "lightgbm": "lightgbm:LGBMRegressor",
    },
}


def _estimator(task: str, name: str, hyperparameters: dict[str, Any], where: str = "train.hyperparameters"):
    """``name``'s estimator with ``hyperparameters`` (``where``: their key in ``params.yaml``),
    checked before any data is touched: an unknown estimator, hyperparameter or value is a
    ``SettingsError`` naming the key and what is valid."""
    import importlib

    from ..errors import SettingsError

    choices = ESTIMATORS.get(task, {})
    if name not in choices:
        raise SettingsError(
            f"params.yaml: train.estimator: {name!r} is not an estimator for {task}; "
            f"choose one of {', '.join(sorted(choices))}"
        )
    module, cls = choices[name].split(":")
    try:
        estimator = getattr(importlib.import_module(module), cls)
    except ImportError:
        raise SettingsError(
            f"params.yaml: train.estimator: {name} needs the {module} package, which is not installed: "
            f"uv add {module}"
        ) from None
    valid = estimator().get_params()
    unknown = [key for key in hyperparameters if key not in valid]
    if unknown:
        import difflib

        def hint(key) -> str:
            block = difflib.get_close_matches(str(key), list(choices), n=1, cutoff=0.8)
            if block:
                return f" ({key!r}: a misspelt block of {block[0]}?)"
            near = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.8)
            return f" ({key!r}: did you mean {near[0]}?)" if near else ""

        verb = "is not a hyperparameter" if len(unknown) == 1 else "are not hyperparameters"
        raise SettingsError(
            f"params.yaml: {where}: {', '.join(map(repr, unknown))} {verb} of {name} ({cls})"
            f"{''.join(map(hint, unknown))}; valid ones: {', '.join(sorted(valid))}"
        )
    quiet = {"verbose": -1} if module == "lightgbm" else {}  # LightGBM logs every tree's warnings
    model = estimator(**quiet, **hyperparameters)
    try:  # scikit-learn's own check, done now rather than after preprocessing
        if hasattr(model, "_parameter_constraints"):  # LightGBM's estimators declare none
            model._validate_params()
    except (TypeError, ValueError) as error:
        raise SettingsError(f"params.yaml: {where}: {error}") from None
    return model


class DateParts:
    """Dates (any format pandas parses) to year, month, day of week and day of year; NaN when a
    value is missing or not a date. Stateless: ``fit`` learns nothing."""

    PARTS = ("year", "month", "dayofweek", "dayofyear")

    def fit(self, features, labels=None):
        self.n_features_in_ = features.shape[1]
        return self

    def transform(self, features):
        import warnings

        import numpy as np
        import pandas as pd

        frame = pd.DataFrame(features)
        blocks = []
        for column in frame.columns:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = pd.to_datetime(frame[column], errors="coerce", format="mixed")
            blocks += [getattr(parsed.dt, part).astype("float64").to_numpy() for part in self.PARTS]
        return np.column_stack(blocks) if blocks else np.empty((len(frame), 0))

    def fit_transform(self, features, labels=None):
        return self.fit(features).transform(features)

    def get_feature_names_out(self, input_features=None):
        names = list(input_features) if input_features is not None else []
        return [f"{name}_{part}" for name in names for part in self.PARTS]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def set_params(self, **params: Any) -> DateParts:
        return self


def build_pipeline(
    task: str,
    name: str,
    hyperparameters: dict[str, Any],
    features,
    dates=(),
    where: str = "train.hyperparameters",
):
    """Impute and scale numeric columns, one-hot encode text columns, turn ``dates`` into numbers,
    then fit ``name``."""
    from pandas.api.types import is_numeric_dtype
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    dates = [c for c in dates if c in features.columns]
    numeric = [c for c in features.columns if c not in dates and is_numeric_dtype(features[c])]
    other = [c for c in features.columns if c not in numeric and c not in dates]
    branches = [
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (
            "categorical",
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
            ),
            other,
        ),
    ]
    if dates:
        branches.append(
            (
                "dates",
                make_pipeline(
                    DateParts(), SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
                ),
                dates,
            )
        )
    preprocess = ColumnTransformer(branches)
    return Pipeline([("preprocess", preprocess), ("model", _estimator(task, name, hyperparameters, where))])
