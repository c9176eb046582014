"""Video and audio I/O (PyAV, in memory), rate conversion and audio features.

Import the submodules: :mod:`tfgbench.media.io`, :mod:`tfgbench.media.resample`.
"""
