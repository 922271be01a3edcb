"""Crash benchmark: ``kill -9`` of ``itbot run`` in the middle of a burst of DMs, then a restart.

Usage::

    .venv/bin/python bench/crash_bench.py                       # 100 DMs, 3 crashes -> bench/results/crash.json
    .venv/bin/python bench/crash_bench.py --dms 300 --rounds 5

Each round starts the real ``itbot run`` process against the local fake Slack (tests/fakeslack), sends a burst
of DMs from 20 users, kills the process with SIGKILL right after the first answer appears, starts it again and
waits until every question Slack saw acknowledged has an answer. It counts questions acknowledged, answered
before the kill, answered exactly once in the end, lost (acknowledged, never answered) and doubled, and how long
the restarted process took to answer the last of them (start-up included). ``tests/test_durable_intake.py``
runs a short form of the same story in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.slack_bench import QUESTIONS, THINKING, start_bot  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="Crash benchmark (kill -9 mid-burst, restart)")
    parser.add_argument("--dms", type=int, default=100, help="DMs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "crash.json")
    args = parser.parse_args()

    from tests.fakeslack import FakeSlack, User

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    work = Path(tempfile.mkdtemp(prefix="itbot-crash-bench-"))
    database = work / "itbot.db"
    rounds = []
    with FakeSlack.start() as fake:
        users = [User(id=f"U0KILL{n:04d}", name=f"user{n}", real_name=f"User {n}", email=f"u{n}@example.com")
                 for n in range(20)]
        for user in users:
            fake.add_user(user)

        def answers(event: dict) -> list[dict]:
            thread = fake.messages(event["channel"], thread_ts=event["ts"])[1:]
            return [m for m in thread if m.get("bot_id") and THINKING not in m.get("text", "")]

        bot = start_bot(fake, database, work / "itbot-0.log")
        fake.wait_for_connection(timeout=600)
        for number in range(args.rounds):
            envelopes = [fake.payloads.message(f"{QUESTIONS[n % len(QUESTIONS)]} (round {number}, #{n})",
                                               user=users[n % len(users)].id) for n in range(args.dms)]
            pushed = [fake.push(envelope) for envelope in envelopes]
            events = [envelope["payload"]["event"] for envelope in envelopes]
            fake.wait_until(lambda: any(answers(e) for e in events), timeout=120, what="the first answer")
            bot.send_signal(signal.SIGKILL)
            bot.wait(timeout=30)
            acked = [e for envelope_id, e in zip(pushed, events) if fake.acks(envelope_id)]
            before = sum(bool(answers(e)) for e in acked)
            restarted = time.perf_counter()
            bot = start_bot(fake, database, work / f"itbot-{number + 1}.log")
            try:
                fake.wait_until(lambda: all(answers(e) for e in acked), timeout=600, what="every answer")
                recovered_s = time.perf_counter() - restarted
            except TimeoutError:
                recovered_s = None
            time.sleep(3.0)  # a duplicate would arrive by now
            counts = [len(answers(e)) for e in acked]
            rounds.append({"dms": args.dms, "acknowledged": len(acked), "answered_before_kill": before,
                           "answered_exactly_once": counts.count(1), "lost": counts.count(0),
                           "doubled": sum(c > 1 for c in counts),
                           "restart_to_last_answer_s": round(recovered_s, 1) if recovered_s else None})
            print(f"round {number + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
        bot.send_signal(signal.SIGTERM)
        exit_code = bot.wait(timeout=60)

    total = {key: sum(r[key] for r in rounds) for key in ("dms", "acknowledged", "answered_before_kill",
                                                           "answered_exactly_once", "lost", "doubled")}
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "bot": "itbot run (separate process), kb mode, SQLite", "rounds": rounds, "total": total,
              "shutdown_exit_code": exit_code}
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(total))
    return 0 if total["lost"] == 0 and total["doubled"] == 0 and exit_code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
