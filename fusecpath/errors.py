"""Errors that reach the user as one line: what is wrong and what to do."""

from __future__ import annotations


class FusecpathError(Exception):
    """Base class: its message is printed as it is, on one line, by the CLI."""


class UnknownModelError(FusecpathError, KeyError):
    """A model name that no installed plugin registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(FusecpathError):
    """A plugin that failed to load or register (raised only in strict mode)."""


class WeightsError(FusecpathError):
    """Weights that cannot be found, downloaded or read."""


class SpecError(FusecpathError, ValueError):
    """An EncoderSpec with a field that is not allowed (raised when the spec is made, at registration)."""
