"""Inference, evaluation and training engines built on the models and backends."""
