# Sourced by console/tests/run.sh and benches/console/run.sh (after deploy/lib.sh and
# `sdsim_services`): starts `sdsim up` from "$bin" on free loopback ports, on a fresh database
# with its own Redis prefix and a temporary mail outbox; waits for /readyz. A trap stops the
# stack and drops the database however the script ends. Sets $base and $work (the outbox is
# $work/outbox); needs $venv (a Python for picking free ports).
work="$(mktemp -d /tmp/sdsim-console-tests.XXXXXX)"
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
    if [ -n "${shots:-}" ]; then log "screenshots: $shots"; fi
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
# Every test signs up from 127.0.0.1: lift the per-address limits the tests would meet.
export SDSIM_AUTH__LIMITS__REGISTER_PER_IP_PER_HOUR=10000
export SDSIM_AUTH__LIMITS__MAIL_PER_IP_PER_HOUR=10000
export SDSIM_AUTH__LIMITS__LOGIN_PER_IP_PER_MINUTE=10000
# One address (loopback) and a few users make every request here: the API's own rate limits
# are not what these measure.
export SDSIM_GATEWAY__RATE_LIMITS__READS_PER_MINUTE=0
export SDSIM_GATEWAY__RATE_LIMITS__WRITES_PER_MINUTE=0
export SDSIM_GATEWAY__RATE_LIMITS__RUN_STARTS_PER_MINUTE=0
export SDSIM_GATEWAY__RATE_LIMITS__PER_ADDRESS_PER_MINUTE=0
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
ready() { "$venv/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$base/readyz" 2>/dev/null; }
for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "sdsim up exited early"
    if ready; then break; fi
    sleep 0.2
done
ready || die "sdsim did not become ready"
