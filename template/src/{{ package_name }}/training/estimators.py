"""The model: preprocessing plus an estimator chosen by name in ``params.yaml``."""

from __future__ import annotations

from typing import Any

ESTIMATORS = {
    "classification": {
        "logistic_regression": "sklearn.linear_model:LogisticRegression",
        "random_forest": "sklearn.ensemble:RandomForestClassifier",
        "gradient_boosting": "sklearn.ensemble:HistGradientBoostingClassifier",
    },
    "regression": {
        "ridge": "sklearn.linear_model:Ridge",
        "random_forest": "sklearn.ensemble:RandomForestRegressor",
        "gradient_boosting": "sklearn.ensemble:HistGradientBoostingRegressor",
    },
}


def _estimator(task: str, name: str, hyperparameters: dict[str, Any]):
    import importlib

    try:
        module, cls = ESTIMATORS[task][name].split(":")
    except KeyError:
        raise ValueError(
            f"unknown estimator {name!r} for {task}: choose one of {sorted(ESTIMATORS.get(task, {}))}"
        ) from None
    return getattr(importlib.import_module(module), cls)(**hyperparameters)


def build_pipeline(task: str, name: str, hyperparameters: dict[str, Any], features):
    """Impute and scale numeric columns, one-hot encode the rest, then fit ``name``."""
    from pandas.api.types import is_numeric_dtype
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in features.columns if is_numeric_dtype(features[c])]
    other = [c for c in features.columns if c not in numeric]
    preprocess = ColumnTransformer(
        [
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
    )
    return Pipeline([("preprocess", preprocess), ("model", _estimator(task, name, hyperparameters))])
