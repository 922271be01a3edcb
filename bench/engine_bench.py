"""Answer-engine benchmark: quality on held-out data, latency and start-up time, in kb mode.

Usage::

    .venv/bin/python bench/engine_bench.py            # writes bench/results/engine.json

Measures, on this machine:
  * intent accuracy, macro-F1, out-of-scope P/R/F1 and action accuracy on the
    held-out test split and on the independent challenge set (written by a
    separate author who never saw the training data);
  * per-question latency p50/p95/p99 (kb mode, excluding Slack);
  * engine start-up time with a warm router, index and encoder cache (a fresh process each time);
  * re-indexing time after 100 articles are added to the knowledge base (router cached, index not).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STARTUP_SNIPPET = """
import time; t = time.perf_counter()
from bot.settings import Settings
from answers.engine import build_engine
engine = build_engine(Settings(_env_file=None).engine_config())
engine.answer("warm up")
print(time.perf_counter() - t)
"""


def held_out_reports(engine) -> dict[str, dict]:
    """The evaluation report of the held-out test split and of the challenge set."""
    from answers.evaluation import evaluate_engine
    from data import SPLITS_DIR
    from data.utterances import read_jsonl

    return {name: evaluate_engine(engine, read_jsonl(path))[0]
            for name, path in (("test_split", SPLITS_DIR / "test.jsonl"),
                               ("challenge_set", SPLITS_DIR.parent / "eval" / "challenge.jsonl"))}


def reindex_after_adding(count: int, cache: Path) -> float:
    """Seconds to rebuild the engine after ``count`` new articles land in the KB folder (router already cached)."""
    import re
    import shutil
    from dataclasses import replace

    from answers.engine import build_engine
    from bot.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="itbot-kb-"))
    shutil.copytree(REPO / "data" / "kb", folder / "builtin")
    sources = sorted((REPO / "data" / "eval" / "org_kb").rglob("*.md")) + sorted((REPO / "data" / "kb").rglob("*.md"))
    for i in range(count):  # variants of real articles: new ids, titles and a distinct first line
        text = sources[i % len(sources)].read_text(encoding="utf-8")
        text = re.sub(r"^id: .*$", f"id: added-{i}", text, count=1, flags=re.M)
        title = re.search(r"^title: (.*)$", text, flags=re.M).group(1).strip().strip("\"'")
        text = re.sub(r"^title: .*$", lambda _: "title: " + json.dumps(f"{title} (site {i})"), text, count=1,
                      flags=re.M)
        (folder / "added").mkdir(exist_ok=True)
        (folder / "added" / f"added-{i}.md").write_text(text.replace("\n---\n", f"\n---\nAt site {i}: ", 1),
                                                         encoding="utf-8")
    started = time.perf_counter()
    build_engine(replace(Settings(_env_file=None, cache_dir=cache).engine_config(), kb_dir=folder))
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return elapsed


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine()}


def main() -> int:
    from answers.embedder import SentenceEmbedder
    from answers.engine import build_engine
    from bot.settings import Settings

    cache = Path(tempfile.mkdtemp(prefix="itbot-bench-"))
    env = {**os.environ, "ITBOT_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    engine = build_engine(Settings(_env_file=None, cache_dir=cache).engine_config())
    cold_start = time.perf_counter() - started

    results = {"machine": machine(), "mode": "kb", "cold_start_s (router trained)": round(cold_start, 2),
               "encoder": SentenceEmbedder(cache_dir=cache).backend,  # the one build_engine chose: cache is warm
               "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(f"sentence encoder: {results['encoder']}; load average {results['load_average']}")
    for name, report in held_out_reports(engine).items():
        results[name] = {key: report[key] for key in
                         ("n", "intent_accuracy", "intent_macro_f1", "action_accuracy", "out_of_scope", "latency_ms")}
        print(f"{name}: n={report['n']} intent={report['intent_accuracy']:.3f} action={report['action_accuracy']:.3f} "
              f"oos_f1={report['out_of_scope']['f1']:.3f} p50={report['latency_ms']['p50']:.1f}ms "
              f"p95={report['latency_ms']['p95']:.1f}ms")

    startups = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", STARTUP_SNIPPET], env=env, capture_output=True, text=True,
                             check=True)
        startups.append(float(out.stdout.strip().splitlines()[-1]))
    results["warm_start_s"] = {"median": round(statistics.median(startups), 3), "max": round(max(startups), 3)}
    print(f"engine start-up (cached router and index): median {results['warm_start_s']['median']:.2f}s")

    results["reindex_after_adding_100_articles_s"] = round(reindex_after_adding(100, cache), 2)
    print(f"re-indexing after adding 100 articles: {results['reindex_after_adding_100_articles_s']:.1f}s")

    out_path = REPO / "bench" / "results" / "engine.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out_path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
