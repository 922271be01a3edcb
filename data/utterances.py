"""Read the hand-written intent utterances.

Each file ``data/intents/<label>.txt`` holds one utterance per line. The
label is an intent of the taxonomy, optionally followed by ``__escalate`` for
messages of that intent that need a human at once (credentials entered on a
phishing page, a stolen laptop).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from llm.errors import DatasetError
from answers.taxonomy import INTENTS, Action, default_action

__all__ = ["Utterance", "load_utterances", "read_jsonl", "write_jsonl", "sync_jsonl", "split_label"]


@dataclass(frozen=True, slots=True)
class Utterance:
    """One labelled question."""

    text: str
    label: str
    intent: str
    action: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def split_label(label: str) -> tuple[str, str]:
    """Map a file label to ``(intent, expected action)``."""
    intent, _, suffix = label.partition("__")
    if intent not in INTENTS:
        raise DatasetError(f"label {label!r}: {intent!r} is not an intent of the taxonomy")
    if suffix and suffix not in {a.value for a in Action}:
        raise DatasetError(f"label {label!r}: suffix {suffix!r} is not an action")
    return intent, suffix or default_action(intent).value


def load_utterances(directory: Path) -> list[Utterance]:
    """All utterances, in file order, labels validated."""
    files = sorted(directory.glob("*.txt"))
    if not files:
        raise DatasetError(f"no utterance files in {directory}")
    utterances: list[Utterance] = []
    for path in files:
        intent, action = split_label(path.stem)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                raise DatasetError(f"{path.name}:{number}: blank line")
            utterances.append(Utterance(text=line.strip(), label=path.stem, intent=intent, action=action))
    return utterances


def read_jsonl(path: Path) -> list[dict]:
    """Parse a JSON-lines file (optionally ``.gz``); raise :class:`DatasetError` with the line number on bad input."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist")
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rows = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object")
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Write rows as JSON lines; a ``.gz`` suffix writes a reproducible gzip file (no timestamp)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    if path.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def sync_jsonl(expected: dict[Path, list[dict]], *, check: bool, rebuild: str) -> int:
    """Write generated JSONL files, or with ``check`` report the stale ones; return an exit code.

    Args:
        expected: Each file and the rows it should hold.
        check: Compare instead of writing.
        rebuild: The command that regenerates the files, quoted in the message.
    """
    if check:
        stale = [path.name for path, rows in expected.items() if not path.is_file() or read_jsonl(path) != rows]
        if stale:
            print(f"stale: {', '.join(stale)}; run {rebuild}", file=sys.stderr)
            return 1
        print("generated files are up to date")
        return 0
    for path, rows in expected.items():
        write_jsonl(path, rows)
        print(f"{path.name}: {len(rows)} rows")
    return 0


_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> frozenset[str]:
    """Lower-cased word set, used for near-duplicate detection."""
    return frozenset(_WORD.findall(text.lower().replace("'", "").replace("\u2019", "")))
