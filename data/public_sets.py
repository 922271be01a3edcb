"""Public data sets the engine learns from or is measured on (see ``data/public/README.md``).

CLINC150 (clinc/oos-eval, CC BY 3.0) holds everyday questions to a voice assistant: banking, travel, cooking,
small talk, none of them IT support. A sample of its *train* split teaches the router what "not IT" looks like
in words nobody on this project wrote; its validation and test splits stay for measuring
(``bench/public_bench.py``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["CLINC_FILE", "clinc_rows", "router_rows", "CLINC_PER_INTENT"]

CLINC_FILE = Path(__file__).resolve().parent / "public" / "clinc150" / "clinc150.jsonl"
CLINC_PER_INTENT = 10  # of 100 train lines per intent: each everyday domain covered, IT still outweighs it
# Small talk and replies the bot answers as a greeting or in the conversation ("thanks", "are you a bot?", "what can
# you do?"; data/LABELLING.md labels chit-chat itself), so they are not "not IT" examples for the router.
CONVERSATIONAL_DOMAINS = frozenset({"small_talk"})
CONVERSATIONAL = frozenset({"yes", "no", "maybe", "cancel", "repeat"})


def clinc_rows(split: str) -> list[dict]:
    """CLINC150 rows of one split (``train``, ``val`` or ``test``)."""
    with CLINC_FILE.open(encoding="utf-8") as handle:
        return [row for row in map(json.loads, handle) if row["split"] == split]


def router_rows(*, per_intent: int = CLINC_PER_INTENT) -> list[dict]:
    """Training rows for the router: the first ``per_intent`` CLINC150 train lines of each intent, as out of scope.

    The out-of-scope ("oos") train lines are all kept; small talk and conversational replies are left out.
    """
    kept: dict[str, list[dict]] = defaultdict(list)
    for row in clinc_rows("train"):
        if row["clinc_intent"] in CONVERSATIONAL or row["domain"] in CONVERSATIONAL_DOMAINS:
            continue
        bucket = kept[row["clinc_intent"]]
        if row["clinc_intent"] == "oos" or len(bucket) < per_intent:
            bucket.append({"text": row["text"], "label": "out_of_scope"})
    return [row for rows in kept.values() for row in rows]
