#!/bin/sh
# The image's entry point: `docker run IMAGE [COMMAND...]` runs `itbot COMMAND...` (default: `itbot run`).
#
# Before `run` and `web` it brings the database up to date and fetches the embedded model when the answer
# mode needs it and it is missing (into the /data volume, once); every other command (`ask`, `kb check`,
# `db purge`...) starts at once. It then execs itbot, so the bot is PID 1's only process and receives
# `docker stop`'s SIGTERM itself.
set -eu

case "${1:-run}" in
    run|web)
        case "${ITBOT_DATABASE_URL:-sqlite:}" in
            # `itbot run` migrates SQLite itself and refuses a database file that went missing;
            # `itbot db upgrade` would quietly start an empty one in its place.
            sqlite:*) ;;
            # PostgreSQL: migrate first, so a replica never serves an old schema (replicas take turns).
            *) itbot db upgrade ;;
        esac
        itbot model fetch --if-needed
        ;;
esac

[ "$#" -gt 0 ] || set -- run
exec itbot "$@"
