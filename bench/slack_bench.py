"""Slack load benchmark: the real ``itbot run`` process under a burst of DMs over real Socket Mode, kb mode.

Usage::

    .venv/bin/python bench/slack_bench.py                                  # 200 DMs from 50 users -> bench/results/slack.json
    .venv/bin/python bench/slack_bench.py --dms 1000 --users 100 --rounds 3 --output bench/results/slack_load.json

The bot runs as in production, a separate ``itbot run`` process (its own
interpreter, so the fake's threads do not share its GIL), pointed at a local
fake Slack (tests/fakeslack) that serves the Web API and the Socket Mode
WebSocket on 127.0.0.1. In each round every user sends their DMs at once. The
script measures the ack latency of each envelope (Slack's limit is 3 s), the
time from push to the final answer in the thread, the bot's resident memory
after each round (flat means no leak), and checks that every question got
exactly one answer and that every question and answer is in the database.
Finally it sends SIGTERM and times the shutdown.

``--pin`` (Linux) runs the bot on CPU 1 and the fake Slack with this script on
CPU 0, so the figures show what one core does for the bot when Slack's side
costs it nothing, as in production, where Slack is another company's servers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from answers.evaluation import percentile  # noqa: E402

QUESTIONS = ["my vpn keeps dropping", "forgot my password", "printer says offline", "outlook not syncing",
             "how do I install zoom", "wifi connected but no internet", "teams camera not working",
             "my laptop is super slow", "locked out of my account", "need access to the finance sharepoint"]
THINKING = "Looking into it"


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_bot(fake, database: Path, log_path: Path, *, cpu: int | None = None) -> subprocess.Popen:
    """``itbot run`` against the fake, as an operator would start it."""
    script = Path(sys.executable).with_name("itbot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ITBOT_"))}
    env.update(SLACK_BOT_TOKEN=fake.bot_token, SLACK_APP_TOKEN=fake.app_token, SLACK_API_URL=fake.api_url,
               ITBOT_DATABASE_URL=f"sqlite:///{database}", ITBOT_RATE_LIMIT="1000/minute", ITBOT_METRICS_PORT="0",
               PYTHONPATH=str(REPO))
    if os.environ.get("ITBOT_CACHE_DIR"):
        env["ITBOT_CACHE_DIR"] = os.environ["ITBOT_CACHE_DIR"]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    return subprocess.Popen(command + ["run"], env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT,
                            preexec_fn=pin)


def main() -> int:
    parser = argparse.ArgumentParser(description="Slack load benchmark")
    parser.add_argument("--dms", type=int, default=200, help="DMs per round")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --dms each; memory is read after each")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "slack.json")
    parser.add_argument("--pin", action="store_true", help="bot on CPU 1, fake Slack and this script on CPU 0 (Linux)")
    args = parser.parse_args()
    if args.pin:
        if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
            parser.error("--pin needs Linux and at least 2 CPUs")
        os.sched_setaffinity(0, {0})

    from tests.fakeslack import FakeSlack, User

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    work = Path(tempfile.mkdtemp(prefix="itbot-slack-bench-"))
    database = work / "itbot.db"
    with FakeSlack.start() as fake:
        users = [User(id=f"U0LOAD{n:04d}", name=f"user{n}", real_name=f"User {n}", email=f"u{n}@example.com")
                 for n in range(args.users)]
        for user in users:
            fake.add_user(user)
        started = time.perf_counter()
        bot = start_bot(fake, database, work / "itbot.log", cpu=1 if args.pin else None)
        try:
            fake.wait_for_connection(timeout=600)
            connected_s = time.perf_counter() - started

            def answers(event: dict) -> list[dict]:
                thread = fake.messages(event["channel"], thread_ts=event["ts"])[1:]
                return [m for m in thread if THINKING not in m.get("text", "")]

            warm = fake.payloads.message("hello, is anyone there?", user=users[0].id)
            fake.push(warm)
            fake.wait_until(lambda: answers(warm["payload"]["event"]), timeout=120, what="the warm-up answer")
            memory = [round(rss_mb(bot.pid), 1)]
            rounds = []
            for round_number in range(args.rounds):
                rounds.append(run_round(fake, users, args.dms, answers))
                time.sleep(2.0)  # let the process settle before reading its memory
                memory.append(round(rss_mb(bot.pid), 1))
                shown = {k: v for k, v in rounds[-1].items() if not k.startswith("_")}
                print(f"round {round_number + 1}: {json.dumps(shown)}, RSS {memory[-1]} MB", file=sys.stderr)
        finally:
            stop_began = time.perf_counter()
            bot.send_signal(signal.SIGTERM)
            exit_code = bot.wait(timeout=60)
            stop_s = time.perf_counter() - stop_began

    total = args.dms * args.rounds + 1  # and the warm-up question
    with sqlite3.connect(database) as db:
        stored = {
            "conversations": db.execute("SELECT count(*) FROM conversations").fetchone()[0],
            "questions": db.execute("SELECT count(*) FROM messages WHERE role = 'user'").fetchone()[0],
            "answers": db.execute("SELECT count(*) FROM messages WHERE role = 'assistant'").fetchone()[0],
        }
    merged = {key: [v for r in rounds for v in r.pop(f"_{key}")] for key in ("acks", "end_to_end")}
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "bot": "itbot run (separate process)", "mode": "kb",
        "cpus_used": "bot on CPU 1, fake Slack and benchmark on CPU 0" if args.pin else "all shared",
        "dms": args.dms * args.rounds, "users": args.users, "rounds": args.rounds,
        "connect_s": round(connected_s, 1),
        "ack_ms": {"p50": round(percentile(merged["acks"], 50), 1), "p99": round(percentile(merged["acks"], 99), 1),
                   "max": round(max(merged["acks"]), 1)},
        "end_to_end_ms": {"p50": round(percentile(merged["end_to_end"], 50), 1),
                          "p95": round(percentile(merged["end_to_end"], 95), 1)},
        "answered_exactly_once": sum(r["answered_exactly_once"] for r in rounds),
        "lost": sum(r["lost"] for r in rounds), "duplicated": sum(r["duplicated"] for r in rounds),
        "not_an_answer": sum(r["not_an_answer"] for r in rounds),
        "throughput_per_s": [r["throughput_per_s"] for r in rounds],
        "stored": stored, "stored_all": stored["conversations"] == stored["questions"] == stored["answers"] == total,
        "rss_mb_after_warmup_then_each_round": memory,
        "shutdown": {"exit_code": exit_code, "seconds": round(stop_s, 2)},
        "rounds_detail": rounds,
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    ok = (result["lost"] == 0 and result["duplicated"] == 0 and result["not_an_answer"] == 0 and result["stored_all"]
          and exit_code == 0)
    return 0 if ok else 1


def run_round(fake, users, dms: int, answers) -> dict:
    """Every user sends their share of ``dms`` at once; wait for every answer and measure."""
    pushes: list[tuple[str, dict]] = []
    lock = threading.Lock()
    calls_before = len(fake.calls())

    def user_sends(index: int) -> None:
        user = users[index % len(users)]
        for n in range(index, dms, len(users)):
            envelope = fake.payloads.message(QUESTIONS[n % len(QUESTIONS)], user=user.id)
            envelope_id = fake.push(envelope)
            with lock:
                pushes.append((envelope_id, envelope["payload"]["event"]))

    threads = [threading.Thread(target=user_sends, args=(i,)) for i in range(len(users))]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    waiting = [e for _, e in pushes]
    deadline = time.monotonic() + 900
    while waiting and time.monotonic() < deadline:  # a cheap poll: re-scanning on every Slack call would steal CPU
        time.sleep(0.2)
        waiting = [e for e in waiting if not answers(e)]
    elapsed = time.perf_counter() - began  # up to 0.2 s late: throughput is a slight underestimate
    time.sleep(1.0)  # let any duplicate show up
    acks = [fake.wait_for_ack(envelope_id).latency * 1000 for envelope_id, _ in pushes]
    # the moment each final answer was written: its chat.postMessage, or the chat.update that replaced a placeholder
    written: dict[str, float] = {}
    for call in fake.calls()[calls_before:]:
        if call.method == "chat.update":
            written[call.params.get("ts")] = call.at
        elif call.method == "chat.postMessage" and isinstance(call.response, dict) and call.response.get("ts"):
            written.setdefault(call.response["ts"], call.at)
    end_to_end = [(written[answers(event)[0]["ts"]] - fake.pushed(envelope_id).at) * 1000
                  for envelope_id, event in pushes]
    counts = [len(answers(e)) for _, e in pushes]
    # a reply is an answer only if it carries the answer's blocks: "busy", rate-limit and apology texts do not count
    refused = sum(1 for _, e in pushes for m in answers(e) if "Sources:" not in json.dumps(m.get("blocks") or []))
    return {
        "dms": len(pushes), "wall_s": round(elapsed, 2), "throughput_per_s": round(len(pushes) / elapsed, 1),
        "answered_exactly_once": sum(c == 1 for c in counts), "lost": sum(c == 0 for c in counts),
        "duplicated": sum(c > 1 for c in counts), "not_an_answer": refused,
        "ack_ms_p99": round(percentile(acks, 99), 1), "end_to_end_ms_p95": round(percentile(end_to_end, 95), 1),
        "_acks": acks, "_end_to_end": end_to_end,
    }


if __name__ == "__main__":
    raise SystemExit(main())
