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

work="$(mktemp -d /tmp/sdsim-console-tests.XXXXXX)"
shots="${SDSIM_CONSOLE_SHOTS:-$SDSIM_LOCAL/console-shots}"
rm -rf "$shots"; mkdir -p "$shots"
db="sdsim_console_$(date +%s)_$$"
pid=""

cleanup() {
    local rc=$?
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    if [ "$rc" != 0 ] && [ -f "$work/sdsim.log" ]; then
        log "the stack's last log lines:"; tail -n 40 "$work/sdsim.log" >&2 || true
    fi
    rm -rf "$work"
    log "screenshots: $shots"
    exit "$rc"
}
trap cleanup EXIT INT TERM

# Ten free loopback ports, one per listener.
mapfile -t ports < <("$venv/bin/python" - <<'PY'
import socket
socks = []
for _ in range(10):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
for s in socks: s.close()
PY
)

psql "$SDSIM_PG_BASE/postgres" -qc "create database \"$db\"" >/dev/null
export DATABASE_URL="$SDSIM_PG_BASE/$db"
export SDSIM_REDIS__PREFIX="console-test-$$-$(date +%s):"
export SDSIM_AUTH__JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)"
export SDSIM_AUTH__BCRYPT_COST=4
export SDSIM_AUTH__MIN_PASSWORD_SCORE=0
export SDSIM_AUTH__MAIL__TRANSPORT=file
export SDSIM_AUTH__MAIL__OUTBOX_DIR="$work/outbox"
export SDSIM_GATEWAY__LISTEN__HTTP="127.0.0.1:${ports[0]}"
export SDSIM_GATEWAY__LISTEN__GRPC="127.0.0.1:${ports[1]}"
export SDSIM_AUTH__LISTEN__GRPC="127.0.0.1:${ports[2]}"
export SDSIM_AUTH__LISTEN__HTTP="127.0.0.1:${ports[3]}"
export SDSIM_PROJECT__LISTEN__GRPC="127.0.0.1:${ports[4]}"
export SDSIM_PROJECT__LISTEN__HTTP="127.0.0.1:${ports[5]}"
export SDSIM_SIMULATION__LISTEN__GRPC="127.0.0.1:${ports[6]}"
export SDSIM_SIMULATION__LISTEN__HTTP="127.0.0.1:${ports[7]}"
export SDSIM_AUTH__MAIL__PUBLIC_URL="http://127.0.0.1:${ports[0]}"
export SDSIM_PROJECT__PUBLIC_URL="http://127.0.0.1:${ports[0]}"
mkdir -p "$work/outbox"

log "sdsim migrate on $db"
"$bin" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }
log "sdsim up on 127.0.0.1:${ports[0]}"
"$bin" up >"$work/sdsim.log" 2>&1 &
pid=$!
base="http://127.0.0.1:${ports[0]}"
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "sdsim up exited early"
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || die "sdsim did not become ready"

export SDSIM_CONSOLE_URL="$base"
export SDSIM_CONSOLE_OUTBOX="$work/outbox"
export SDSIM_CONSOLE_SHOTS="$shots"
export SDSIM_CHROMIUM="${SDSIM_CHROMIUM:-$(command -v chromium)}"
cd "$SDSIM_ROOT/console/tests"
"$venv/bin/python" -m pytest -p no:cacheprovider -q "$@"
