"""Errors that nma reports to a person as one paragraph, never as a traceback."""

from __future__ import annotations


class NmaError(Exception):
    """An error with a message meant for the user.

    The CLI prints ``str(error)`` as one paragraph and exits with ``exit_code``.
    """

    exit_code: int = 1


class UsageError(NmaError):
    """Bad input: an unknown plugin or option, a bad value, a corrupt file. Exit code 2."""

    exit_code = 2


class PluginError(UsageError):
    """A plugin that was asked for is missing, failed to load, or is claimed twice."""
