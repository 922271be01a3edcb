"""Writes per second on the message-append path, with concurrent writer threads.

Usage:

    python bench/storage_bench.py                       # SQLite file in a temp dir, 4 threads x 2000 messages
    python bench/storage_bench.py --threads 4 --messages 5000
    python bench/storage_bench.py --url postgresql+psycopg://postgres@127.0.0.1:55432/itbot_test

Each thread has its own session and appends messages to its own
conversation, one transaction per message (the unit of work of a Slack
event): ``append_message`` redacts the text, inserts the row and touches the
conversation. Afterwards every (thread, sequence) pair is checked to be
stored exactly once. The result is printed and written to
``bench/results/storage.json`` (for the default SQLite run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
logger = logging.getLogger("bench.storage")


@dataclass
class Arguments:
    threads: int = 4
    messages: int = 2000
    url: str | None = None
    output: Path | None = None


def parse_args() -> Arguments:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=4, help="concurrent writer threads")
    parser.add_argument("--messages", type=int, default=2000, help="messages per thread")
    parser.add_argument("--url", help="database URL (default: a new SQLite file in a temp dir)")
    parser.add_argument("--output", type=Path, help=f"JSON result file (default: {RESULTS} for SQLite runs)")
    args = Arguments(**vars(parser.parse_args()))
    if args.threads < 1 or args.messages < 1:
        parser.error("--threads and --messages must be at least 1")
    return args


def run(url: str, threads: int, messages: int) -> dict:
    """Run the benchmark against an empty database at ``url`` and return the figures."""
    from sqlalchemy import func, select

    from storage.db import make_engine, make_session_factory
    from storage.migrate import upgrade
    from storage.models import Message
    from storage.repository import append_message, get_or_create_conversation

    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    conversations = []
    with factory.begin() as session:
        for worker in range(threads):
            conversations.append(get_or_create_conversation(
                session, team_id="TBENCH", channel_id=f"DBENCH{worker}", thread_ts=f"{time.time():.6f}",
                user_id=f"UBENCH{worker}", source="dm").id)

    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        barrier.wait()
        try:
            for seq in range(messages):
                began = time.perf_counter()
                with factory.begin() as session:
                    append_message(session, conversation_id=conversations[worker], role="user",
                                   text=f"w{worker} m{seq}: vpn drops, my password is Hunter{seq}!")
                latencies[worker].append(time.perf_counter() - began)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    workers = [threading.Thread(target=writer, args=(worker,)) for worker in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started

    with factory() as session:
        texts = session.scalars(select(Message.text)).all()
        stored = session.scalar(select(func.count()).select_from(Message))
    engine.dispose()
    keys = [text.split(":", 1)[0] for text in texts]
    expected = {f"w{w} m{s}" for w in range(threads) for s in range(messages)}
    all_latencies = sorted(value for per_thread in latencies for value in per_thread)
    written = len(all_latencies)
    return {
        "writes_per_s": round(written / elapsed, 1),
        "threads": threads,
        "messages_per_thread": messages,
        "written": written,
        "stored": stored,
        "lost_rows": len(expected - set(keys)),
        "duplicate_rows": len(keys) - len(set(keys)),
        "leaked_passwords": sum("Hunter" in text for text in texts),
        "errors": [f"{type(error).__name__}: {str(error).splitlines()[0]}" for error in errors],
        "elapsed_s": round(elapsed, 3),
        "latency_ms": {
            "p50": round(statistics.median(all_latencies) * 1000, 3) if all_latencies else None,
            "p99": round(all_latencies[int(0.99 * (written - 1))] * 1000, 3) if all_latencies else None,
            "max": round(all_latencies[-1] * 1000, 3) if all_latencies else None,
        },
    }


def machine() -> dict:
    import sqlalchemy

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = parse_args()

    # Database: the given URL, or a fresh SQLite file (WAL, busy timeout: the production settings).
    with tempfile.TemporaryDirectory(prefix="itbot-bench-") as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        figures = run(url, args.threads, args.messages)
        engine_name = url.split(":", 1)[0].split("+", 1)[0]

    # Report, and fail loudly if anything was lost, duplicated or leaked.
    result = {
        "benchmark": "storage.append_message",
        "engine": engine_name,
        "target": "over 1000 writes/s on SQLite with 4 writer threads, no lost rows",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **figures,
        "machine": machine(),
    }
    output = args.output or (RESULTS if args.url is None else None)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s", output)
    print(json.dumps(result, indent=2))
    ok = not figures["errors"] and figures["lost_rows"] == 0 and figures["duplicate_rows"] == 0
    ok = ok and figures["stored"] == figures["written"] == args.threads * args.messages
    if not ok or figures["leaked_passwords"]:
        raise SystemExit("storage bench: rows lost, duplicated or unredacted, or a writer failed")


if __name__ == "__main__":
    main()
