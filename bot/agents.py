"""Who may claim and resolve escalations: listed user ids, and optionally the members of a Slack user group.

Group members are read with ``usergroups.users.list`` and cached for a few
minutes, so a click costs no extra API call. When Slack cannot be asked, the
last known members stay valid; with none known, nobody from the group is an
agent (refusing is the safe failure).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from slack_sdk import WebClient

__all__ = ["AgentGroup", "GROUP_TTL_S"]

log = logging.getLogger(__name__)
GROUP_TTL_S = 300.0


class AgentGroup:
    """The members of one Slack user group, refreshed at most every ``ttl_s`` seconds."""

    def __init__(self, client: "WebClient", group_id: str, *, ttl_s: float = GROUP_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client, self.group_id, self._ttl, self._clock = client, group_id, ttl_s, clock
        self._members: frozenset[str] | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.members()

    def members(self) -> frozenset[str]:
        """The group's current members (cached)."""
        with self._lock:
            if self._clock() - self._fetched_at >= self._ttl:
                self._refresh()
            return self._members or frozenset()

    def _refresh(self) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            response = self._client.usergroups_users_list(usergroup=self.group_id)
        except SlackApiError as error:
            log.warning("could not read agent user group %s: %s", self.group_id, error.response.get("error"))
        except (SlackClientError, OSError) as error:
            log.warning("could not read agent user group %s: %s", self.group_id, error.__class__.__name__)
        else:
            self._members = frozenset(response.get("users") or ())
            log.debug("agent user group %s has %d members", self.group_id, len(self._members))
        # retry a failed read after the same interval as a successful one, so a Slack outage is not hammered
        self._fetched_at = self._clock()
