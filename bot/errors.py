"""Errors the command line turns into one clear line.

    ItbotError
     ├── ConfigError       a setting is missing or malformed, or Slack refuses it (exit code 2)
     └── SlackUnreachable  Slack cannot be reached from this machine (exit code 3)
"""

from __future__ import annotations

__all__ = ["ItbotError", "ConfigError", "SlackUnreachable"]


class ItbotError(Exception):
    """Base class: the message is meant for the user, on one line."""

    exit_code = 1


class ConfigError(ItbotError):
    """A setting is missing or malformed; the message says how to fix it."""

    exit_code = 2


class SlackUnreachable(ItbotError):
    """No answer from Slack (network, firewall or proxy); the message says where it failed and what to check."""

    exit_code = 3
