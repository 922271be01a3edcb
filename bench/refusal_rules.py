"""How much of the out-of-scope data the refusal rules catch, and how many other lines they wrongly catch.

Usage::

    .venv/bin/python bench/refusal_rules.py     # -> bench/results/refusal_rules.json

Counts, on the train and validation splits (the lines the rules were written
from), how many out-of-scope lines ``answers.policy`` refuses as a prompt injection
or a harmful request, and how many lines of every other label it refuses too.
The text is normalised first, as the engine does. Held-out splits are left to
``bench/engine_bench.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from data.splits import load_split
    from answers.normalize import normalize_slack_text
    from answers.policy import looks_like_abuse, looks_like_injection

    rows = load_split("train") + load_split("validation")
    caught = {"out_of_scope": [0, 0], "other": [0, 0]}  # [refused, total]
    wrongly = []
    for row in rows:
        text = normalize_slack_text(row["text"])
        refused = looks_like_injection(text) or looks_like_abuse(text)
        kind = "out_of_scope" if row["intent"] == "out_of_scope" else "other"
        caught[kind][0] += refused
        caught[kind][1] += 1
        if refused and kind == "other":
            wrongly.append(row["text"])
    results = {"splits": ["train", "validation"],
               "out_of_scope_refused": caught["out_of_scope"][0], "out_of_scope_lines": caught["out_of_scope"][1],
               "other_refused": caught["other"][0], "other_lines": caught["other"][1], "other_refused_texts": wrongly}
    print(f"out-of-scope lines refused by the rules: {caught['out_of_scope'][0]} of {caught['out_of_scope'][1]}; "
          f"other lines refused: {caught['other'][0]} of {caught['other'][1]}")
    out = REPO / "bench" / "results" / "refusal_rules.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
