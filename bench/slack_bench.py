"""Slack load benchmark: concurrent DMs through the real Bolt app over real Socket Mode, kb mode.

Usage::

    .venv/bin/python bench/slack_bench.py [--dms 200] [--users 50]   # writes bench/results/slack.json

A local fake Slack (tests/fakeslack) serves the Web API and the Socket Mode
WebSocket on 127.0.0.1. Every user sends their DMs at once; the script
measures the ack latency of each envelope (Slack's limit is 3 s), the time
from push to the final answer in the thread, and checks that every question
got exactly one answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llm.evaluation import percentile  # noqa: E402

QUESTIONS = ["my vpn keeps dropping", "forgot my password", "printer says offline", "outlook not syncing",
             "how do I install zoom", "wifi connected but no internet", "teams camera not working",
             "my laptop is super slow", "locked out of my account", "need access to the finance sharepoint"]


def main() -> int:
    parser = argparse.ArgumentParser(description="Slack load benchmark")
    parser.add_argument("--dms", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args()

    from bot.app import build_app, build_services
    from bot.settings import Settings
    from storage.migrate import upgrade
    from tests.fakeslack import FakeSlack, User

    work = Path(tempfile.mkdtemp(prefix="itbot-slack-bench-"))
    with FakeSlack.start() as fake:
        users = [User(id=f"U0LOAD{n:04d}", name=f"user{n}", real_name=f"User {n}", email=f"u{n}@example.com")
                 for n in range(args.users)]
        for user in users:
            fake.add_user(user)
        settings = Settings(_env_file=None, slack_bot_token=fake.bot_token, slack_app_token=fake.app_token,
                            slack_api_url=fake.api_url, database_url=f"sqlite:///{work / 'itbot.db'}",
                            rate_limit="1000/minute", cache_dir=Path(os.environ.get("ITBOT_CACHE_DIR", work)))
        upgrade(settings.database_url)
        services = build_services(settings)
        services.engine.answer("warm up")
        app = build_app(settings, services)
        with fake.connect(app):
            pushes: list[tuple[str, dict, float]] = []
            lock = threading.Lock()

            def user_sends(index: int) -> None:
                user = users[index % len(users)]
                for n in range(index, args.dms, len(users)):
                    envelope = fake.payloads.message(QUESTIONS[n % len(QUESTIONS)], user=user.id)
                    started = time.perf_counter()
                    envelope_id = fake.push(envelope)
                    with lock:
                        pushes.append((envelope_id, envelope["payload"]["event"], started))

            threads = [threading.Thread(target=user_sends, args=(i,)) for i in range(len(users))]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            def answers(event: dict) -> list[dict]:
                thread = fake.messages(event["channel"], thread_ts=event["ts"])[1:]
                return [m for m in thread if "Looking into it" not in m.get("text", "")]

            fake.wait_until(lambda: all(answers(e) for _, e, _ in pushes), timeout=600, what="every answer")
            elapsed = time.perf_counter() - began
            time.sleep(1.0)  # let any duplicate show up
            acks = [fake.wait_for_ack(envelope_id).latency * 1000 for envelope_id, _, _ in pushes]
            done = {call.params.get("ts"): call.at for call in fake.calls("chat.update")}
            end_to_end = [(done[answers(event)[0]["ts"]] - fake.pushed(envelope_id).at) * 1000
                          for envelope_id, event, _ in pushes]
            counts = [len(answers(e)) for _, e, _ in pushes]
        services.worker.shutdown()

    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "dms": len(pushes), "users": len(users), "mode": "kb",
        "ack_ms": {"p50": round(percentile(acks, 50), 1), "p99": round(percentile(acks, 99), 1),
                   "max": round(max(acks), 1)},
        "answered_exactly_once": sum(c == 1 for c in counts), "lost": sum(c == 0 for c in counts),
        "duplicated": sum(c > 1 for c in counts), "wall_s": round(elapsed, 2),
        "throughput_per_s": round(len(pushes) / elapsed, 1),
    }
    result["end_to_end_ms"] = {"p50": round(percentile(end_to_end, 50), 1),
                               "p95": round(percentile(end_to_end, 95), 1)}
    out = REPO / "bench" / "results" / "slack.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
