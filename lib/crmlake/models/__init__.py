"""Churn and uplift models: MLlib pipelines, MLflow training, evaluation, promotion, scoring."""
