"""Baseline talking-face models shipped as tfgbench plugins."""
