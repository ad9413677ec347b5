"""Measuring a model: PaddleSeg's segmentation metrics, ``evaluate`` over a dataset, reports and speed benchmarks."""
