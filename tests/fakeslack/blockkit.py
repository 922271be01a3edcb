"""The Slack limits a bot meets in practice, checked the way Slack reports them.

Each checker returns a list of messages in Slack's own shape,
``"<problem> [json-pointer:/blocks/0/text/text]"``, so a failing test shows
which block broke. The list is a subset of Block Kit's rules: the limits an
LLM-written answer or a long ticket summary actually trips.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = ["MAX_MESSAGE_BLOCKS", "MAX_TEXT_CHARS", "MAX_VIEW_BLOCKS", "block_errors", "view_errors", "with_block_ids"]

MAX_TEXT_CHARS = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

_BLOCK_TYPES = {"actions", "context", "divider", "file", "header", "image", "input", "markdown",
                "rich_text", "section", "video", "table", "context_actions"}
_SELECTS = {"static_select", "multi_static_select", "external_select", "multi_external_select",
            "users_select", "multi_users_select", "conversations_select", "multi_conversations_select",
            "channels_select", "multi_channels_select"}


def _too_long(value: Any, limit: int, pointer: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{pointer}]"]
    return []


def _text_object(obj: Any, pointer: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return [f"must be a text object [json-pointer:{pointer}]"]
    if plain_only and obj["type"] != "plain_text":
        return [f"must be a plain_text object [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{pointer}/text]"]
    return _too_long(text, limit, f"{pointer}/text")


def _element(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or "type" not in element:
        return [f"missing required field: type [json-pointer:{pointer}]"]
    errors = _too_long(element.get("action_id"), 255, f"{pointer}/action_id")
    kind = element["type"]
    if kind == "button":
        errors += _text_object(element.get("text"), f"{pointer}/text", limit=75, plain_only=True)
        errors += _too_long(element.get("value"), 2000, f"{pointer}/value")
        errors += _too_long(element.get("url"), 3000, f"{pointer}/url")
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(f"must be one of primary, danger [json-pointer:{pointer}/style]")
    elif kind in _SELECTS or kind in ("overflow", "radio_buttons", "checkboxes"):
        options = element.get("options") or []
        if len(options) > 100:
            errors.append(f"no more than 100 items allowed [json-pointer:{pointer}/options]")
        for i, option in enumerate(options):
            errors += _too_long((option or {}).get("value"), 150, f"{pointer}/options/{i}/value")
    elif kind == "plain_text_input":
        if element.get("max_length", 0) > 3000:
            errors.append(f"must be less than 3001 [json-pointer:{pointer}/max_length]")
    return errors


def _context_action(element: Any, pointer: str) -> list[str]:
    """A ``feedback_buttons`` or ``icon_button`` element, the only ones a ``context_actions`` block takes."""
    if not isinstance(element, dict) or element.get("type") not in ("feedback_buttons", "icon_button"):
        return [f"must be one of feedback_buttons, icon_button [json-pointer:{pointer}/type]"]
    errors = _too_long(element.get("action_id"), 255, f"{pointer}/action_id")
    if element["type"] == "icon_button":
        return errors + _text_object(element.get("text"), f"{pointer}/text", limit=75, plain_only=True)
    for side in ("positive_button", "negative_button"):
        button = element.get(side)
        if not isinstance(button, dict):
            errors.append(f"missing required field: {side} [json-pointer:{pointer}]")
            continue
        errors += _text_object(button.get("text"), f"{pointer}/{side}/text", limit=75, plain_only=True)
        if not isinstance(button.get("value"), str) or not button["value"]:
            errors.append(f"missing required field: value [json-pointer:{pointer}/{side}]")
        errors += _too_long(button.get("value"), 2000, f"{pointer}/{side}/value")
        errors += _too_long(button.get("accessibility_label"), 75, f"{pointer}/{side}/accessibility_label")
    return errors


def _block(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must be an object [json-pointer:{pointer}]"]
    kind = block.get("type")
    if kind not in _BLOCK_TYPES:
        return [f"unsupported type: {kind} [json-pointer:{pointer}/type]"]
    errors = _too_long(block.get("block_id"), 255, f"{pointer}/block_id")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide either text or fields [json-pointer:{pointer}]")
        if "text" in block:
            errors += _text_object(block["text"], f"{pointer}/text", limit=3000)
        fields = block.get("fields") or []
        if len(fields) > 10:
            errors.append(f"no more than 10 items allowed [json-pointer:{pointer}/fields]")
        for i, item in enumerate(fields):
            errors += _text_object(item, f"{pointer}/fields/{i}", limit=2000)
        if "accessory" in block:
            errors += _element(block["accessory"], f"{pointer}/accessory")
    elif kind == "header":
        errors += _text_object(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
    elif kind == "markdown":
        errors += _too_long(block.get("text"), 12_000, f"{pointer}/text")
    elif kind in ("actions", "context"):
        elements = block.get("elements") or []
        limit = 25 if kind == "actions" else 10
        if not elements:
            errors.append(f"must provide at least 1 item [json-pointer:{pointer}/elements]")
        if len(elements) > limit:
            errors.append(f"no more than {limit} items allowed [json-pointer:{pointer}/elements]")
        for i, element in enumerate(elements):
            if kind == "actions":
                errors += _element(element, f"{pointer}/elements/{i}")
            elif isinstance(element, dict) and element.get("type") in ("plain_text", "mrkdwn"):
                errors += _text_object(element, f"{pointer}/elements/{i}", limit=3000)
    elif kind == "context_actions":
        elements = block.get("elements") or []
        if not elements:
            errors.append(f"must provide at least 1 item [json-pointer:{pointer}/elements]")
        if len(elements) > 5:
            errors.append(f"no more than 5 items allowed [json-pointer:{pointer}/elements]")
        for i, element in enumerate(elements):
            errors += _context_action(element, f"{pointer}/elements/{i}")
    elif kind == "input":
        errors += _text_object(block.get("label"), f"{pointer}/label", limit=2000, plain_only=True)
        if "element" not in block:
            errors.append(f"missing required field: element [json-pointer:{pointer}]")
        else:
            errors += _element(block["element"], f"{pointer}/element")
    return errors


def block_errors(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Problems Slack would report for ``blocks``; empty when Slack would accept them."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{pointer}]"]
    errors = []
    if len(blocks) > max_blocks:
        errors.append(f"no more than {max_blocks} items allowed [json-pointer:{pointer}]")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        errors += _block(block, f"{pointer}/{i}")
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            if block_id in seen:
                errors.append(f"duplicate block_id: {block_id} [json-pointer:{pointer}/{i}/block_id]")
            seen.add(block_id)
    return errors


def view_errors(view: Any) -> list[str]:
    """Problems Slack would report for a modal or App Home ``view``."""
    if not isinstance(view, dict):
        return ["must be an object [json-pointer:/view]"]
    if view.get("type") not in ("modal", "home"):
        return ["must be one of modal, home [json-pointer:/view/type]"]
    errors = block_errors(view.get("blocks"), max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks")
    if "blocks" not in view:
        errors.append("missing required field: blocks [json-pointer:/view]")
    if view["type"] == "modal":
        errors += _text_object(view.get("title"), "/view/title", limit=24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                errors += _text_object(view[key], f"/view/{key}", limit=24, plain_only=True)
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
        if has_input and "submit" not in view:
            errors.append("must provide submit when the view has input blocks [json-pointer:/view/submit]")
    errors += _too_long(view.get("private_metadata"), 3000, "/view/private_metadata")
    errors += _too_long(view.get("callback_id"), 255, "/view/callback_id")
    errors += _too_long(view.get("external_id"), 255, "/view/external_id")
    return errors


def with_block_ids(blocks: Any) -> Any:
    """``blocks`` with a generated ``block_id`` wherever one is missing, as Slack stores them."""
    if not isinstance(blocks, list):
        return blocks
    return [b if not isinstance(b, dict) or b.get("block_id") else {**b, "block_id": secrets.token_hex(3)}
            for b in blocks]
