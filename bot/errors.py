"""Errors the command line turns into one clear line.

    ItbotError
     └── ConfigError       a setting is missing or malformed (exit code 2)
"""

from __future__ import annotations

__all__ = ["ItbotError", "ConfigError"]


class ItbotError(Exception):
    """Base class: the message is meant for the user, on one line."""

    exit_code = 1


class ConfigError(ItbotError):
    """A setting is missing or malformed; the message says how to fix it."""

    exit_code = 2

