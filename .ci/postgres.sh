#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the storage tests and
# print the line that points the tests at it:
#
#   eval "$(.ci/postgres.sh)"    # sets ITBOT_TEST_POSTGRES_URL=postgresql+psycopg://...
#
# Installs the Debian `postgresql` package when no server binaries are found
# (needs root), keeps the cluster in $ITBOT_PG_DIR (default /tmp/itbot-pg),
# and is idempotent: a second run reuses the running server and only prints.
# Everything but the export line goes to stderr. Stop it with:
#   runuser -u postgres -- pg_ctl -D /tmp/itbot-pg/data stop
set -euo pipefail

PG_DIR="${ITBOT_PG_DIR:-${TMPDIR:-/tmp}/itbot-pg}"
DATA="$PG_DIR/data"
DB_NAME="itbot_test"
FIRST_PORT="${ITBOT_PG_PORT:-55432}"

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && {
        dirname "$(readlink -f "$(command -v pg_ctl)")"; return 0; }
    return 1
}

if ! BIN="$(find_bin)"; then
    log "installing the Debian postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    BIN="$(find_bin)" || { log "no initdb/pg_ctl after installing postgresql"; exit 1; }
fi

# initdb refuses to run as root: run the server as `postgres` (created by the package) when we are root.
if [[ "$(id -u)" == 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_DIR" --shell /bin/sh postgres
    as_owner() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_owner() { "$@"; }
    OWNER="$(id -un)"
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    PORT="$(cat "$PG_DIR/port")"
    log "reusing the server on 127.0.0.1:$PORT ($DATA)"
else
    if [[ ! -s "$DATA/PG_VERSION" ]]; then
        log "initialising a cluster in $DATA"
        mkdir -p "$PG_DIR"
        chown "$OWNER" "$PG_DIR"
        chmod 700 "$PG_DIR"
        as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null \
            || as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >/dev/null
    fi
    PORT="$FIRST_PORT"
    while port_in_use "$PORT"; do
        PORT=$((PORT + 1))
        (( PORT < FIRST_PORT + 100 )) || { log "no free port from $FIRST_PORT"; exit 1; }
    done
    echo "$PORT" > "$PG_DIR/port"
    # Loopback only, socket in our own directory, tuned for throwaway test data.
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$PG_DIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$PG_DIR -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >&2 \
        || { log "the server did not start; its log:"; tail -n 30 "$PG_DIR/server.log" >&2; exit 1; }
    log "started on 127.0.0.1:$PORT"
fi

psql_() { as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [[ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
    psql_ -c "CREATE DATABASE $DB_NAME" >&2
    log "created database $DB_NAME"
fi

echo "export ITBOT_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB_NAME"
