"""Errors that carry a one-line message for the user (the CLI prints them without a traceback)."""


class BundleError(Exception):
    """A bundle that cannot be used; the message is one line for the user."""


class UsageError(Exception):
    """Bad input named in one line."""


def first_line(exc: BaseException) -> str:
    """An exception's message as one line: its first non-empty line, or its type's name."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
