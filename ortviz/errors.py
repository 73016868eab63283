"""Errors that carry a one-line message for the user (the CLI prints them without a traceback)."""


class UsageError(Exception):
    """Bad input named in one line."""
