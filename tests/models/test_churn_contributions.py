"""Contributions: for a logistic regression, a random forest and a GBT fitted on 2,000 synthetic
subscribers, and for a forest of 100 trees of depth 10, bias + sum(contributions) equals the raw
score MLlib itself computes on every row; a one-split GBT and a two-feature logistic regression
against values worked out by hand; the top drivers of an inline table; and the model types that
are refused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crmlake.models.contributions import (
    contributions,
    linear_contributions,
    source_features,
    top_drivers,
    tree_contributions,
)
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import (
    GBTClassifier,
    LogisticRegression,
    RandomForestClassifier,
)
from pyspark.ml.feature import OneHotEncoder, StringIndexerModel, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.ml.stat import Summarizer
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

PLANS = ["prepaid", "postpaid", "hybrid"]
NUMERIC = ["tenure_months", "data_mb_30d", "complaints_90d", "days_since_last_recharge", "revenue_30d"]
# One slot per numeric feature, then the plan's one-hot slots (3 plans, the last one dropped).
ONE_HOT_SLOTS = [*NUMERIC, "plan", "plan"]
# The plan as one categorical slot (its index carries the nominal metadata trees split on).
INDEXED_SLOTS = [*NUMERIC, "plan"]
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def subscribers_df(spark):
    """2,000 subscribers whose churn depends on most features and on the plan."""
    rng = np.random.default_rng(7)
    n = 2000
    pdf = pd.DataFrame(
        {
            "subscriber_id": np.arange(n),
            "tenure_months": rng.integers(1, 120, n).astype(float),
            "data_mb_30d": rng.gamma(2.0, 800.0, n),
            "complaints_90d": rng.poisson(0.5, n).astype(float),
            "days_since_last_recharge": rng.integers(0, 60, n).astype(float),
            "revenue_30d": rng.normal(20.0, 6.0, n),
            "plan": rng.choice(PLANS, n, p=[0.5, 0.3, 0.2]),
        }
    )
    log_odds = (
        -1.0
        - 0.02 * pdf.tenure_months
        + 0.8 * pdf.complaints_90d
        + 0.05 * pdf.days_since_last_recharge
        - 0.0003 * pdf.data_mb_30d
        + 0.8 * (pdf.plan == "prepaid")
    )
    pdf["label"] = (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(float)
    df = spark.createDataFrame(pdf)
    prepare = Pipeline(
        stages=[
            StringIndexerModel.from_labels(PLANS, inputCol="plan", outputCol="plan_index"),
            OneHotEncoder(inputCols=["plan_index"], outputCols=["plan_one_hot"]),
            VectorAssembler(inputCols=[*NUMERIC, "plan_one_hot"], outputCol="one_hot_features"),
            VectorAssembler(inputCols=[*NUMERIC, "plan_index"], outputCol="indexed_features"),
        ]
    )
    return prepare.fit(df).transform(df).cache()


def worst(scored_df, raw_score, probability):
    """In one pass over the scored rows: the largest |bias + sum(contributions) - raw score|, the
    largest |probability - MLlib's probability of class 1| and the lengths of the contributions."""
    total = F.col("bias") + F.aggregate("contributions", F.lit(0.0), lambda acc, c: acc + c)
    return scored_df.select(
        F.max(F.abs(total - raw_score)).alias("sum_gap"),
        F.max(F.abs(probability - class_1("probability"))).alias("probability_gap"),
        F.collect_set(F.size("contributions")).alias("lengths"),
    ).first()


def class_1(vector_col):
    return vector_to_array(F.col(vector_col))[1]


def logistic(log_odds):
    return 1 / (1 + F.exp(-log_odds))


def test_logistic_regression_contributions_add_up_to_the_log_odds(subscribers_df):
    model = LogisticRegression(featuresCol="one_hot_features", regParam=0.01).fit(subscribers_df)
    means = subscribers_df.select(Summarizer.mean(F.col("one_hot_features"))).first()[0].toArray().tolist()

    scored_df = contributions(model.transform(subscribers_df), model, "one_hot_features", ONE_HOT_SLOTS, means)

    # rawPrediction[1] is the log-odds of the probability.
    log_odds = class_1("rawPrediction")
    result = worst(scored_df, log_odds, logistic(log_odds))
    assert result.sum_gap < TOLERANCE
    assert result.probability_gap < 1e-12
    assert result.lengths == [6]
    assert scored_df.columns == [*model.transform(subscribers_df).columns, "bias", "contributions"]


def test_random_forest_contributions_add_up_to_the_probability(spark, subscribers_df):
    model = RandomForestClassifier(featuresCol="indexed_features", numTrees=20, maxDepth=5, seed=3).fit(subscribers_df)
    # The plan is a categorical slot here: the walk must follow MLlib's categorical splits too.
    assert " in {" in model.toDebugString

    # Values no training row had: NaN, a plan index beyond the three and one between two. A
    # categorical split sends a value that is none of its categories to the side whose set of
    # categories MLlib did not keep (with two of three plans going left: left).
    odd_df = spark.createDataFrame(
        [
            (Vectors.dense([math.nan] * 5 + [0.0]),),
            (Vectors.dense([60.0, 800.0, 1.0, 10.0, 20.0, 7.0]),),
            (Vectors.dense([60.0, 800.0, 1.0, 10.0, 20.0, 1.5]),),
        ],
        ["indexed_features"],
    )
    scored_df = contributions(
        model.transform(subscribers_df.select("indexed_features").unionByName(odd_df)),
        model,
        "indexed_features",
        INDEXED_SLOTS,
    )

    result = worst(scored_df, class_1("probability"), class_1("probability"))
    assert result.sum_gap < TOLERANCE
    assert result.lengths == [6]


@pytest.mark.slow
def test_a_forest_of_100_trees_of_depth_10_is_read_whole_and_adds_up(spark):
    # Tens of thousands of nodes: read through py4j, one call per node attribute, these took
    # minutes; from the node table MLlib saves, seconds.
    rng = np.random.default_rng(23)
    n = 3000
    pdf = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 120, n).astype(float),
            "data_mb_30d": rng.gamma(2.0, 800.0, n),
            "complaints_90d": rng.poisson(0.5, n).astype(float),
            "plan": rng.choice(PLANS, n),
        }
    )
    log_odds = -0.5 - 0.02 * pdf.tenure_months + 0.8 * pdf.complaints_90d + 0.8 * (pdf.plan == "prepaid")
    pdf["label"] = (rng.random(n) < 1 / (1 + np.exp(-log_odds))).astype(float)
    slots = ["tenure_months", "data_mb_30d", "complaints_90d", "plan"]
    indexer = StringIndexerModel.from_labels(PLANS, inputCol="plan", outputCol="plan_index")
    assembler = VectorAssembler(inputCols=[*slots[:-1], "plan_index"], outputCol="features")
    df = assembler.transform(indexer.transform(spark.createDataFrame(pdf)))
    model = RandomForestClassifier(numTrees=100, maxDepth=10, seed=5).fit(df)
    assert max(tree.depth for tree in model.trees) == 10
    assert model.totalNumNodes > 100 * 200

    scored_df = tree_contributions(model.transform(df), model, "features", slots)

    result = worst(scored_df, class_1("probability"), class_1("probability"))
    assert result.sum_gap < TOLERANCE
    assert result.lengths == [4]


def test_gbt_contributions_add_up_to_twice_the_margin(subscribers_df):
    model = GBTClassifier(featuresCol="one_hot_features", maxIter=20, maxDepth=3, seed=3).fit(subscribers_df)

    scored_df = contributions(model.transform(subscribers_df), model, "one_hot_features", ONE_HOT_SLOTS)

    # MLlib's GBT probability is 1 / (1 + exp(-2 * margin)): twice the margin is the log-odds.
    log_odds = 2 * class_1("rawPrediction")
    result = worst(scored_df, log_odds, logistic(log_odds))
    assert result.sum_gap < TOLERANCE
    assert result.probability_gap < 1e-12
    assert result.lengths == [6]


def test_one_split_gbt_credits_its_feature_as_worked_out_by_hand(spark):
    # Churn is exactly a == 1 (3 of 8 rows); b carries no information.
    rows = [(float(a), float(b), float(a)) for a, b in [(0, 1), (0, 2), (0, 1), (0, 2), (0, 1), (1, 2), (1, 1), (1, 2)]]
    df = VectorAssembler(inputCols=["a", "b"], outputCol="features").transform(
        spark.createDataFrame(rows, ["a", "b", "label"])
    )
    model = GBTClassifier(maxIter=1, maxDepth=1).fit(df)

    scored_df = tree_contributions(df, model, "features", ["a", "b"])

    # The first tree fits the labels as -1/+1: the root predicts their mean, (3 - 5) / 8 = -0.25,
    # the leaves -1 and +1; the log-odds are twice the margin.
    expected_df = spark.createDataFrame(
        [(a, b, 2 * -0.25, [2 * ((1.0 if a == 1 else -1.0) + 0.25), 0.0]) for a, b, _ in rows],
        "a double, b double, bias double, contributions array<double>",
    )
    assertDataFrameEqual(scored_df.select("a", "b", "bias", "contributions"), expected_df, rtol=1e-12)
    drivers_df = top_drivers(scored_df, ["a", "b"]).select("a", "drivers").distinct()
    assertDataFrameEqual(
        drivers_df,
        spark.createDataFrame([(0.0, []), (1.0, [("a", 2.5)])], drivers_df.schema),
        rtol=1e-12,
    )


def test_logistic_regression_contribution_is_weight_times_distance_from_the_mean(spark):
    rng = np.random.default_rng(11)
    a = rng.normal(0.0, 1.0, 400)
    pdf = pd.DataFrame(
        {"a": a, "b": rng.normal(5.0, 1.0, 400), "label": (a + rng.normal(0, 0.7, 400) > 0).astype(float)}
    )
    df = VectorAssembler(inputCols=["a", "b"], outputCol="features").transform(spark.createDataFrame(pdf))
    model = LogisticRegression(regParam=0.01).fit(df)
    w_a, w_b = model.coefficients.toArray().tolist()
    means = [0.5, 4.0]
    one_df = spark.createDataFrame([(1, Vectors.dense([2.0, 4.5]))], ["subscriber_id", "features"])

    scored_df = linear_contributions(one_df, model, "features", ["a", "b"], means)

    expected_df = spark.createDataFrame(
        [(1, Vectors.dense([2.0, 4.5]), model.intercept + 0.5 * w_a + 4.0 * w_b, [w_a * 1.5, w_b * 0.5])],
        scored_df.schema,
    )
    assertDataFrameEqual(scored_df, expected_df, rtol=1e-12)
    assert w_a > 1.0 and abs(w_b) < 0.5 * w_a
    assert top_drivers(scored_df, ["a", "b"], k=1).first()["drivers"][0]["feature"] == "a"
    with pytest.raises(ValueError, match="means"):
        contributions(one_df, model, "features", ["a", "b"])
    with pytest.raises(ValueError, match="slot_features names 3 slots"):
        contributions(one_df, model, "features", ["a", "b", "c"], [0.0, 0.0, 0.0])


def test_top_drivers_are_the_largest_positive_contributions_first(spark):
    schema = "subscriber_id int, contributions array<double>"
    df = spark.createDataFrame(
        [
            (1, [0.3, -0.2, 0.5, 0.1]),
            (2, [0.2, 0.2, -1.0, 0.0]),  # a tie keeps the features' order; zero is no driver
            (3, [-0.1, -0.2, -0.3, -0.4]),  # nothing pushes towards churn
            (4, [0.1, 0.4, 0.3, 0.2]),  # four positives, three shown
            (5, [math.nan, 0.1, -0.3, -0.4]),
            (6, None),
        ],
        schema,
    )

    drivers_df = top_drivers(df, ["a", "b", "c", "d"], k=3)

    driver = T.StructType([T.StructField("feature", T.StringType()), T.StructField("contribution", T.DoubleType())])
    expected_df = spark.createDataFrame(
        [
            (1, [0.3, -0.2, 0.5, 0.1], [("c", 0.5), ("a", 0.3), ("d", 0.1)]),
            (2, [0.2, 0.2, -1.0, 0.0], [("a", 0.2), ("b", 0.2)]),
            (3, [-0.1, -0.2, -0.3, -0.4], []),
            (4, [0.1, 0.4, 0.3, 0.2], [("b", 0.4), ("c", 0.3), ("d", 0.2)]),
            (5, [math.nan, 0.1, -0.3, -0.4], [("b", 0.1)]),
            (6, None, None),
        ],
        T.StructType(
            [
                T.StructField("subscriber_id", T.IntegerType()),
                T.StructField("contributions", T.ArrayType(T.DoubleType())),
                T.StructField("drivers", T.ArrayType(driver)),
            ]
        ),
    )
    assertDataFrameEqual(drivers_df, expected_df)


def test_source_features_are_named_in_order_of_first_appearance():
    assert source_features(["tenure", "plan", "plan", "data", "plan"]) == ["tenure", "plan", "data"]


def test_other_model_types_are_refused(spark):
    df = spark.createDataFrame([(Vectors.dense([0.0]),)], ["features"])
    indexer = StringIndexerModel.from_labels(["prepaid", "postpaid"], inputCol="plan", outputCol="plan_index")

    with pytest.raises(TypeError, match="StringIndexerModel"):
        contributions(df, indexer, "features", ["a"])
    with pytest.raises(TypeError, match=r"PipelineModel \(pass the fitted classifier"):
        contributions(df, PipelineModel(stages=[indexer]), "features", ["a"])
