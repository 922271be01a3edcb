"""Split the utterances into train / validation / test, stratified by label.

Near-duplicates (token-set Jaccard >= 0.6, or character 4-gram Jaccard >= 0.75)
are grouped first and every group goes to one split whole, so the held-out
test never contains a reworded copy of a training line.

Utterances in ``data/intents/train_only/`` were written after the test split
was frozen, from validation errors and coverage gaps, never from the test
split. They only ever go to train (so adding them cannot reshuffle the
held-out splits), and any that is a near-duplicate of a validation or test
line is dropped and reported.

Usage::

    python -m data.splits            # rewrite data/splits/*.jsonl
    python -m data.splits --check    # exit 1 if the committed splits are stale
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

from data import INTENTS_DIR, SPLITS_DIR, TRAIN_ONLY_DIR
from data.utterances import Utterance, load_utterances, read_jsonl, sync_jsonl, tokens

__all__ = ["SPLIT_NAMES", "RATIOS", "near_duplicate", "cross_near_duplicates", "group_near_duplicates", "make_splits",
           "add_train_only", "build_splits", "load_split"]

SPLIT_NAMES = ("train", "validation", "test")
RATIOS = (0.7, 0.1, 0.2)
SEED = 20261124


def _grams(text: str, n: int = 4) -> frozenset[str]:
    squashed = " ".join(sorted(tokens(text)))
    return frozenset(squashed[i : i + n] for i in range(max(1, len(squashed) - n + 1)))


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate(a: str, b: str) -> bool:
    """True when two utterances are the same question reworded only slightly."""
    return _jaccard(tokens(a), tokens(b)) >= 0.6 or _jaccard(_grams(a), _grams(b)) >= 0.75


def _similar_pairs(first: list[str], second: list[str]) -> "np.ndarray":
    """Boolean matrix: ``[i, j]`` is True when ``first[i]`` and ``second[j]`` are near-duplicates.

    Jaccard similarities of all pairs at once through sparse set-membership matrices.
    """
    import numpy as np
    from scipy.sparse import csr_matrix

    def membership(sets_a: list[frozenset[str]], sets_b: list[frozenset[str]]):
        vocabulary: dict[str, int] = {}
        matrices = []
        for sets in (sets_a, sets_b):
            rows, cols = [], []
            for i, items in enumerate(sets):
                for item in items:
                    rows.append(i)
                    cols.append(vocabulary.setdefault(item, len(vocabulary)))
            matrices.append((rows, cols, len(sets)))
        built = [csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n, len(vocabulary)))
                 for r, c, n in matrices]
        inter = (built[0] @ built[1].T).toarray()
        size_a = np.array([len(x) for x in sets_a], dtype=np.float32)[:, None]
        size_b = np.array([len(x) for x in sets_b], dtype=np.float32)[None, :]
        union = size_a + size_b - inter
        return np.divide(inter, union, out=np.ones_like(inter), where=union > 0)

    words = membership([tokens(t) for t in first], [tokens(t) for t in second])
    grams = membership([_grams(t) for t in first], [_grams(t) for t in second])
    return (words >= 0.6) | (grams >= 0.75)


def cross_near_duplicates(first: list[str], second: list[str]) -> list[tuple[str, str]]:
    """Every pair (a from ``first``, b from ``second``) that are near-duplicates."""
    if not first or not second:
        return []
    import numpy as np

    rows, cols = np.nonzero(_similar_pairs(first, second))
    return [(first[i], second[j]) for i, j in zip(rows, cols)]


def group_near_duplicates(texts: list[str]) -> list[list[int]]:
    """Indices grouped so near-duplicates share a group (union-find over all similar pairs)."""
    import numpy as np

    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows, cols = np.nonzero(np.triu(_similar_pairs(texts, texts), k=1))
    for i, j in zip(rows.tolist(), cols.tolist()):
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(texts)):
        groups[find(i)].append(i)
    return list(groups.values())


def make_splits(utterances: list[Utterance], *, seed: int = SEED) -> dict[str, list[Utterance]]:
    """Assign near-duplicate groups to splits, label by label, in the ratios of :data:`RATIOS`."""
    rng = random.Random(seed)
    # Group across all labels, so a reworded line can never straddle two splits.
    groups = group_near_duplicates([u.text for u in utterances])
    by_label: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        by_label[utterances[group[0]].label].append(group)
    splits: dict[str, list[Utterance]] = {name: [] for name in SPLIT_NAMES}
    for label in sorted(by_label):
        label_groups = sorted(by_label[label], key=lambda g: min(g))
        rng.shuffle(label_groups)
        total = sum(len(g) for g in label_groups)
        targets = [round(total * r) for r in RATIOS]
        filled = [0, 0, 0]
        for group in label_groups:
            # Put the group where it leaves the largest relative shortfall, test first on ties.
            shortfall = [(targets[k] - filled[k]) / max(targets[k], 1) for k in range(3)]
            k = max((2, 1, 0), key=lambda idx: shortfall[idx])
            filled[k] += len(group)
            splits[SPLIT_NAMES[k]].extend(utterances[i] for i in sorted(group))
    return splits


def add_train_only(splits: dict[str, list[Utterance]], extra: list[Utterance]) -> list[Utterance]:
    """Append ``extra`` to the train split, except near-duplicates of held-out lines and repeats; return those dropped."""
    import numpy as np

    held_out = [u.text for name in SPLIT_NAMES[1:] for u in splits[name]]
    leaking = _similar_pairs([u.text for u in extra], held_out).any(axis=1) if extra and held_out else np.zeros(len(extra))
    seen = {u.text.casefold() for u in splits["train"]}
    dropped = []
    for utterance, leaks in zip(extra, leaking):
        if leaks or utterance.text.casefold() in seen:
            dropped.append(utterance)
            continue
        seen.add(utterance.text.casefold())
        splits["train"].append(utterance)
    return dropped


def build_splits(intents_dir: Path = INTENTS_DIR) -> tuple[dict[str, list[Utterance]], list[Utterance]]:
    """The splits of the utterance files plus the train-only lines, and the train-only lines dropped."""
    splits = make_splits(load_utterances(intents_dir))
    train_only = intents_dir / TRAIN_ONLY_DIR.name
    extra = load_utterances(train_only) if train_only.is_dir() else []
    return splits, add_train_only(splits, extra)


def load_split(name: str, directory: Path = SPLITS_DIR) -> list[dict]:
    """Rows of one committed split (``train``, ``validation`` or ``test``)."""
    return read_jsonl(directory / f"{name}.jsonl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed splits are out of date")
    args = parser.parse_args(argv)
    splits, dropped = build_splits()
    for utterance in dropped:
        print(f"train_only/{utterance.label}.txt: dropped (repeats a training line or rewords a held-out one): "
              f"{utterance.text}")
    expected = {SPLITS_DIR / f"{name}.jsonl": [u.to_dict() for u in splits[name]] for name in SPLIT_NAMES}
    return sync_jsonl(expected, check=args.check, rebuild="python -m data.splits")


if __name__ == "__main__":
    raise SystemExit(main())
