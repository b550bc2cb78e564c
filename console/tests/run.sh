#!/usr/bin/env bash
# End-to-end tests of the console: Debian's Chromium (driven by Playwright) against a real
# `sdsim up` on real PostgreSQL and Redis.
#
#   console/tests/run.sh <path to the sdsim binary> [pytest arguments]
#
# Makes a Python venv (cached), installs Chromium with apt if it is missing, creates a fresh
# database, starts the stack on free ports with a temporary mail outbox and its own Redis
# prefix, waits for /readyz, runs pytest, and always stops the stack and drops the database.
# Screenshots of each step go to $SDSIM_CONSOLE_SHOTS (default .local/console-shots).
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"

bin="${1:?usage: console/tests/run.sh <path to the sdsim binary> [pytest arguments]}"
shift
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[ -x "$bin" ] || die "$bin is not an executable"

sdsim_services
command -v chromium >/dev/null || apt_install chromium
venv="${SDSIM_CONSOLE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/console-venv}"
log "Python test environment in $venv"
ensure_venv "$venv" "$SDSIM_ROOT/console/tests/requirements.txt"

shots="${SDSIM_CONSOLE_SHOTS:-$SDSIM_LOCAL/console-shots}"
rm -rf "$shots"; mkdir -p "$shots"
# Access tokens live 20 s (900 by default), so the tests live through expiries: the page
# refreshes before each one, and the server closes its sockets at it (4009) for them to come
# back with the fresh token. test_sessions.py waits one out.
export SDSIM_AUTH__ACCESS_TTL_SECONDS="${SDSIM_AUTH__ACCESS_TTL_SECONDS:-20}"
source "$SDSIM_ROOT/console/tests/stack.sh"

export SDSIM_CONSOLE_URL="$base"
export SDSIM_CONSOLE_OUTBOX="$work/outbox"
export SDSIM_CONSOLE_SHOTS="$shots"
export SDSIM_CHROMIUM="${SDSIM_CHROMIUM:-$(command -v chromium)}"
cd "$SDSIM_ROOT/console/tests"
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
