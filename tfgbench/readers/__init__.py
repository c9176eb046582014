"""Lip-reading models used as evaluators (WER): AV-HuBERT and Conformer ports.

Modules here may import torch at module level, except this package's ``__init__`` and ``base``.
"""
