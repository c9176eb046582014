"""Metrics, each with named protocols (see :mod:`tfgbench.metrics.base`)."""
