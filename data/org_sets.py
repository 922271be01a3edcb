"""Companies' own knowledge bases written blind for this project (``data/eval/``), and which of them are held out.

Each set is (articles folder, questions about them, questions about systems none of them covers). The held-out
ones are measured by ``bench/public_bench.py`` with their questions unwritten; the development ones are read, tuned
against and learnt from (``training/query_adapter.py``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EVAL", "ORG_SETS", "HELD_OUT", "DEV_ORG_SETS"]

EVAL = Path(__file__).resolve().parent / "eval"


def _org_set(name: str) -> tuple[Path, Path, Path]:
    """A company's set laid out as data/eval/<name>/: kb/, questions.jsonl, uncovered.jsonl."""
    return EVAL / name / "kb", EVAL / name / "questions.jsonl", EVAL / name / "uncovered.jsonl"


# Organisation KBs: (folder name, articles, questions about them, questions about systems none of them covers).
ORG_SETS = {
    "fabrikam": (EVAL / "org_kb", EVAL / "org_questions.jsonl", EVAL / "uncovered_questions.jsonl"),
    **{name: _org_set(name) for name in ("northwind", "tailspin", "woodgrove", "proseware", "litware", "adatum",
                                          "fourthcoffee", "treyresearch", "blueyonder", "humongous", "alpineski",
                                          "wingtip", "lucerne", "relecloud")},
}

# Sets nobody has looked into yet: their figures are written without the questions missed, so they stay a check on
# the engine and not a list of things to fix (look, and the set becomes a development set: move it out of here).
HELD_OUT = frozenset({"litware", "adatum", "fourthcoffee", "treyresearch", "blueyonder", "humongous",
                      "lucerne", "relecloud", "tickets_heldout"})

# The companies whose questions may be read, tuned against and learnt from.
DEV_ORG_SETS = {name: files for name, files in ORG_SETS.items() if name not in HELD_OUT}
