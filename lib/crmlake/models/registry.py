"""What churn and uplift share about registered models: the MLflow client, the version an alias
points at with the inputs it read in training (``model_inputs.json``), whether a table can be
read by it, and ``gold.model_metrics``, where every training run's metrics are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from crmlake.models.churn import FeatureSet

MODEL_METRICS = "gold.model_metrics"
NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


@dataclass(frozen=True)
class Champion:
    model: PipelineModel
    version: str
    inputs: dict  # the model's input columns and types, slots, importances (model_inputs.json)


def mlflow_client():
    from mlflow import MlflowClient

    return MlflowClient()


def current(model_name: str, alias: str) -> Champion | None:
    """The version an alias points at, or None when there is none."""
    import mlflow

    client = mlflow_client()
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        return None
    if alias not in client.get_registered_model(model_name).aliases:
        return None
    version = client.get_model_version_by_alias(model_name, alias)
    inputs = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/model_inputs.json")
    model = mlflow.spark.load_model(f"models:/{model_name}@{alias}")
    return Champion(model, str(version.version), inputs)


def incompatibilities(df: DataFrame, inputs: dict) -> list[str]:
    """What ``df`` lacks or holds with another kind of type than the model read in training
    (numbers and booleans may change width; text must stay text)."""
    problems = []
    for name, kind in inputs["columns"].items():
        if name not in df.columns:
            problems.append(f"{name!r} is missing")
            continue
        found = df.schema[name].dataType
        have = (
            "string"
            if isinstance(found, T.StringType)
            else "number"
            if isinstance(found, (*NUMERIC, T.BooleanType))
            else found.simpleString()
        )
        if have != kind:
            problems.append(f"{name!r} is {found.simpleString()}, the model reads {kind}")
    return problems


def input_kinds(df: DataFrame, fs: FeatureSet) -> dict[str, str]:
    return {c: ("string" if c in fs.categorical else "number") for c in fs.inputs}


def pip_requirements() -> list[str]:
    import pyspark

    return [f"pyspark=={pyspark.__version__}"]
