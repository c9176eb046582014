"""Errors that tfgbench reports to users. Each message names the file and the problem."""

from __future__ import annotations


class TfgbenchError(Exception):
    """Base class: an error whose message is meant for the user, printed without a traceback."""


class MediaError(TfgbenchError):
    """A video or audio file cannot be read or is not usable (corrupt, empty, silent...)."""


class SampleError(TfgbenchError):
    """A sample (or a model's output for it) breaks the sample contract."""


class MissingResourceError(TfgbenchError):
    """Data or weights are missing. The message says what, where it was looked for,
    the environment variable that points to it, and where the official file comes from."""


class RegistryError(TfgbenchError):
    """An unknown, duplicate or broken plugin."""


class ConfigError(TfgbenchError):
    """A bad command-line value or a file the run cannot use (a model's unreadable checkpoint): the
    message names the flag and the value. It stops the run instead of becoming error rows."""
