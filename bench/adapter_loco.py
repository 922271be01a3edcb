"""The development companies measured as if unseen: each with a query adapter learnt without it.

The shipped query adapter (``training/query_adapter.py``) learnt from the development companies' questions, so
their figures in ``bench/results/public.json`` are in-sample. This learns the adapter seven times, each time
leaving one development company out, and measures that company exactly as ``bench/public_bench.py`` does (right
article, uncovered questions answered by kind, everyday questions with its KB installed); ``--without`` measures
the encoder alone for comparison. About ten minutes on two cores::

    .venv/bin/python bench/adapter_loco.py              # writes bench/results/adapter_loco.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.public_bench import everyday_key, org  # noqa: E402


def _pooled(results: dict, split: str) -> dict:
    """Counts over the development companies."""
    right = sum(round(r["answered_from_the_right_article"] * r["questions"]) for r in results.values())
    questions = sum(r["questions"] for r in results.values())
    uncovered = sum(round(r["uncovered_answered_from_an_org_article"] * r["uncovered_questions"])
                    for r in results.values())
    everyday = sum(round(r[everyday_key(split)] * 550) for r in results.values())
    return {"right": right, "questions": questions, "uncovered_answered": uncovered,
            "uncovered_questions": sum(r["uncovered_questions"] for r in results.values()),
            "everyday_answered": everyday, "everyday_questions": 550 * len(results)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "adapter_loco.json")
    parser.add_argument("--without", action="store_true", help="also measure each company with the encoder alone")
    args = parser.parse_args(argv)

    from rich.progress import track

    from bench.engine_bench import machine
    from bot.settings import Settings
    from training.query_adapter import everyday_vectors, load_sets, train

    def progress(rows, label):
        return track(rows, description=label, transient=True)

    settings = Settings(_env_file=None)
    sets = load_sets(cache_dir=settings.cache_dir)
    everyday = everyday_vectors(cache_dir=settings.cache_dir)
    results: dict = {"machine": machine(), "left_one_out": {}, "encoder_alone": {}}
    with tempfile.TemporaryDirectory(prefix="itbot-adapter-loco-") as scratch:
        for held in sets:
            path = Path(scratch) / f"without-{held.name}.npy"
            np.save(path, train([s for s in sets if s is not held], everyday))
            results["left_one_out"][held.name] = r = org(settings, progress, held.name, query_adapter=path)
            print(f"{held.name} (adapter learnt without it): right {r['answered_from_the_right_article']:.2%}, "
                  f"uncovered answered {r['uncovered_answered_from_an_org_article']:.2%}")
            if args.without:
                none = Path(scratch) / "none.npy"  # no such file: the encoder alone
                results["encoder_alone"][held.name] = org(settings, progress, held.name, query_adapter=none)
    results["pooled_left_one_out"] = _pooled(results["left_one_out"], "test")
    if results["encoder_alone"]:
        results["pooled_encoder_alone"] = _pooled(results["encoder_alone"], "test")
    print(json.dumps({k: v for k, v in results.items() if k.startswith("pooled")}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
