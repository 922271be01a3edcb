"""Chat-message helpers shared by the model service and training."""

from __future__ import annotations

__all__ = ["fold_system"]


def fold_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The system prompt moved into the first user turn, for chat templates without a system role.

    Used by the model service when a template refuses the system message, and by training, so both see the
    same text.
    """
    if not messages or messages[0]["role"] != "system":
        return [dict(m) for m in messages]
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    first_user = next((m for m in rest if m["role"] == "user"), None)
    if first_user is None:
        rest.insert(0, {"role": "user", "content": system})
    else:
        first_user["content"] = f"{system}\n\n{first_user['content']}"
    return rest
