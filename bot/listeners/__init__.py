"""Slack listeners, one module per surface, each with ``register(app, services)``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.listeners import actions, commands, errors, home, intake, messages, shortcuts, views

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.services import Services

__all__ = ["register_listeners"]


def register_listeners(app: "App", services: "Services") -> None:
    """Wire every listener to the app, after the durable intake (which runs before each acknowledgement)."""
    app.use(intake.durable_intake(services))
    for module in (messages, home, commands, shortcuts, actions, views, errors):
        module.register(app, services)
