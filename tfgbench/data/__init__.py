"""Datasets and the Sample type."""
