"""Errors that carry a one-line message for the user (the CLI prints them without a traceback)."""

import difflib


class BundleError(Exception):
    """A bundle that cannot be used; the message is one line for the user."""


class UsageError(Exception):
    """Bad input named in one line."""


class NumericalError(RuntimeError):
    """A run that met NaN/Inf (``render``); defined here so the CLI names it without importing
    onnxruntime."""


class ProviderError(ValueError):
    """An execution provider that cannot be used (``providers``); one line."""


def first_line(exc: BaseException) -> str:
    """An exception's message as one line: its first non-empty line, or its type's name."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def did_you_mean(word: str, choices, n: int = 3, cutoff: float = 0.6, show=str) -> str:
    """``"did you mean a, b?"`` for the choices closest to ``word``, or ``""`` when none is."""
    near = difflib.get_close_matches(str(word), list(choices), n=n, cutoff=cutoff)
    return f"did you mean {', '.join(show(c) for c in near)}?" if near else ""
