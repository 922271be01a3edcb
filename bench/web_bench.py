"""Web chat benchmark: the web path's latency next to the engine's, in kb mode, in one run.

Usage::

    .venv/bin/python bench/web_bench.py              # writes bench/results/web.json
    .venv/bin/python bench/web_bench.py --n 200      # fewer questions

For each question of the held-out test split (the first ``--n``), in alternating order:
  * engine: ``AnswerEngine.answer(text)`` called in process (what ``engine.json`` measures);
  * web: one ``POST /api/conversations/{token}/messages`` to the real app (uvicorn on 127.0.0.1, SQLite file in
    WAL mode, rate limits on), timed by the client from sending the request to the end of the streamed reply:
    HTTP, the two rate-limit writes, the ownership check, the engine, storing both turns, the SSE encoding.
The server runs on a thread of this process and the client is ``http.client`` on one keep-alive connection, so
client, server and engine share the same cores (and the GIL): a conservative figure. Target: web p95 at most
20 ms above the engine's p95.

BLAS runs on one thread (``OMP_NUM_THREADS=1`` unless set): on a busy 2-core machine its spinning worker threads
made the engine alone ten times slower (p50 112 ms instead of 24 ms), for both paths alike. The load average
before and after the run is recorded with the figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _name in BLAS_THREADS:  # before NumPy is imported
    os.environ.setdefault(_name, "1")

TARGET_OVERHEAD_MS = 20.0


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "mean": round(statistics.fmean(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=734, help="Questions from the test split (default: all 734).")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "web.json")
    args = parser.parse_args()

    from answers.engine import build_engine
    from bot.settings import Settings
    from data import SPLITS_DIR
    from data.utterances import read_jsonl
    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade
    from web.app import create_app
    from web.config import WebContext
    from web.server import WebServer

    load_before = os.getloadavg()
    # Set up: the engine (kb mode), a migrated SQLite file, the app on a free port
    questions = [row["text"] for row in read_jsonl(SPLITS_DIR / "test.jsonl")][: args.n]
    workdir = Path(tempfile.mkdtemp(prefix="itbot-web-bench-"))
    settings = Settings(_env_file=None, database_url=f"sqlite:///{workdir / 'itbot.db'}", answer_mode="kb",
                        web_rate_limit="100000/minute", web_request_limit="100000/minute")
    engine = build_engine(settings.engine_config())
    upgrade(settings.database_url)
    context = WebContext(config=settings.web_config(), engine=engine,
                         sessions=make_session_factory(make_engine(settings.database_url)))
    server = WebServer(create_app(context), host="127.0.0.1", port=0).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)

    def post(path: str, body: dict) -> tuple[int, bytes]:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()

    def web_answer(text: str) -> float:
        status, body = post("/api/conversations", {})
        assert status == 201, body
        token = json.loads(body)["conversation"]
        started = time.perf_counter()
        status, body = post(f"/api/conversations/{token}/messages", {"text": text})
        elapsed = (time.perf_counter() - started) * 1000
        assert status == 200 and b"event: answer" in body, body[:200]
        return elapsed

    def engine_answer(text: str) -> float:
        started = time.perf_counter()
        engine.answer(text)
        return (time.perf_counter() - started) * 1000

    # Warm up both paths, then measure them question by question, alternating which goes first
    for text in questions[:20]:
        engine_answer(text)
        web_answer(text)
    engine_ms, web_ms = [], []
    for index, text in enumerate(questions):
        if index % 2:
            web_ms.append(web_answer(text))
            engine_ms.append(engine_answer(text))
        else:
            engine_ms.append(engine_answer(text))
            web_ms.append(web_answer(text))
    connection.close()
    server.stop()

    engine_stats, web_stats = percentiles(engine_ms), percentiles(web_ms)
    overhead = round(web_stats["p95"] - engine_stats["p95"], 2)
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "load_average_1_5_15_min": {"before": [round(x, 2) for x in load_before],
                                    "after": [round(x, 2) for x in os.getloadavg()]},
        "blas_threads": os.environ["OMP_NUM_THREADS"],
        "mode": "kb",
        "n": len(questions),
        "database": "SQLite file, WAL",
        "engine_ms": engine_stats,
        "web_ms": web_stats,
        "p95_overhead_ms": overhead,
        "target_p95_overhead_ms": TARGET_OVERHEAD_MS,
        "met": overhead <= TARGET_OVERHEAD_MS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
