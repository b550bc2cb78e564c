#!/usr/bin/env bash
# HAProxy in front of three gateways, live: deploy/checks/haproxy_failover.sh <sdsim binary>
#
# Validates deploy/haproxy/haproxy.cfg (`haproxy -c`), then runs deploy/cluster.sh on free
# loopback ports over a fresh database and Redis prefix (HAProxy, three gateways, two of each
# backend), checks the http->https redirect and HSTS, and runs failover.py: REST load and a
# live run's WebSocket through HAProxy while the gateway carrying the socket is SIGKILLed.
# REST failures must stop within 2 s; the watcher must resume on another gateway with
# ?since= and receive every window once. Everything it started is stopped, the database
# dropped and the Redis keys of its prefix deleted, however it ends. About 40 s.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bin="${1:?usage: haproxy_failover.sh <sdsim binary>}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
command -v haproxy >/dev/null || apt_install haproxy
command -v curl >/dev/null || apt_install curl
sdsim_services
venv="${SDSIM_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/deploy-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/deploy/checks/requirements.txt"

work="$(mktemp -d /tmp/sdsim-haproxy-check.XXXXXX)"
db="sdsim_haproxy_$(date +%s)_$$"
prefix="haproxy-check-$$-$(date +%s):"
cluster=""
limited=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    trap '' PIPE # a closed stdout must not stop the clean-up
    if [ -n "$cluster" ] && kill -0 "$cluster" 2>/dev/null; then
        kill -TERM "$cluster" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$cluster" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$cluster" 2>/dev/null || true
    fi
    [ -n "$limited" ] && kill -TERM "$limited" 2>/dev/null || true
    # Anything of ours still running (cluster.sh kills them; this is the safety net).
    for f in "$work"/cluster/*.pid; do
        [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
    done
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    # SDSIM_KEEP_LOGS=<dir>: every log kept there (for a look at a run that passed too).
    if [ -n "${SDSIM_KEEP_LOGS:-}" ]; then
        cp "$work"/cluster/*.log "$work"/cluster.out "$SDSIM_KEEP_LOGS/" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ]; then
        for f in "$work"/cluster/*.log; do
            [ -f "$f" ] || continue
            log "--- $(basename "$f") (last lines)"; tail -n 8 "$f" >&2
        done
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mapfile -t ports < <("$venv/bin/python" - <<'PY'
import socket
socks = []
for _ in range(21):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
for s in socks: s.close()
PY
)

bash "$SDSIM_ROOT/deploy/haproxy/make-cert.sh" "$work/sdsim.pem" >/dev/null
log "haproxy -c"
SDSIM_HAPROXY_HTTPS=127.0.0.1:1 SDSIM_HAPROXY_HTTP=127.0.0.1:2 SDSIM_HAPROXY_STATS=127.0.0.1:3 \
    SDSIM_HAPROXY_CERT="$work/sdsim.pem" SDSIM_GATEWAY_1=127.0.0.1:4 SDSIM_GATEWAY_2=127.0.0.1:5 \
    SDSIM_GATEWAY_3=127.0.0.1:6 SDSIM_HAPROXY_SOURCE=127.0.0.2 SDSIM_HAPROXY_CONN_RATE=200 SDSIM_HAPROXY_REQ_RATE=1000 \
    haproxy -c -q -f "$SDSIM_ROOT/deploy/haproxy/haproxy.cfg"

psql "$SDSIM_PG_BASE/postgres" -qc "create database \"$db\"" >/dev/null
export DATABASE_URL="$SDSIM_PG_BASE/$db"
export SDSIM_REDIS__PREFIX="$prefix"
export SDSIM_AUTH__JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)"
export SDSIM_AUTH__BCRYPT_COST=4
export SDSIM_AUTH__MIN_PASSWORD_SCORE=0
export SDSIM_AUTH__MAIL__TRANSPORT=file
export SDSIM_AUTH__MAIL__OUTBOX_DIR="$work/outbox"
export SDSIM_SHUTDOWN__GRACE_MS=1000
# The load here is one user from one address: HAProxy's limits are tested, not the API's.
export SDSIM_GATEWAY__RATE_LIMITS__READS_PER_MINUTE=0
export SDSIM_GATEWAY__RATE_LIMITS__WRITES_PER_MINUTE=0
export SDSIM_GATEWAY__RATE_LIMITS__PER_ADDRESS_PER_MINUTE=0
export SDSIM_CLUSTER_DIR="$work/cluster"
export SDSIM_CLUSTER_PORTS="${ports[*]}"
export SDSIM_HAPROXY_CERT="$work/sdsim.pem"
# One client address drives all the load here: the per-address limits are lifted.
export SDSIM_HAPROXY_CONN_RATE=1000000 SDSIM_HAPROXY_REQ_RATE=1000000

bash "$SDSIM_ROOT/deploy/cluster.sh" "$bin" >"$work/cluster.out" 2>&1 &
cluster=$!
for _ in $(seq 1 600); do
    [ -f "$work/cluster/ready" ] && break
    kill -0 "$cluster" 2>/dev/null || { cat "$work/cluster.out" >&2; die "cluster.sh exited"; }
    sleep 0.1
done
[ -f "$work/cluster/ready" ] || { cat "$work/cluster.out" >&2; die "the cluster did not come up in 60 s"; }
https="${ports[0]}"
log "cluster up: HAProxy https://127.0.0.1:$https"

# Plain HTTP is redirected; HTTPS answers with HSTS; /metrics stays inside.
code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[1]}/health")"
[ "$code" = 308 ] || die "http -> https redirect: $code"
curl -ks -o /dev/null -D - "https://127.0.0.1:$https/health" | grep -qi '^strict-transport-security: max-age=' || die "no HSTS header"
code="$(curl -ks -o /dev/null -w '%{http_code}' "https://127.0.0.1:$https/metrics")"
[ "$code" = 404 ] || die "/metrics through HAProxy: $code (want 404)"
code="$(curl -ks -o /dev/null -w '%{http_code}' "https://127.0.0.1:$https/%61dmin/mesh")"
[ "$code" = 404 ] || die "/admin percent-encoded through HAProxy: $code (want 404)"
curl -sf -o /dev/null "http://127.0.0.1:${ports[2]}/metrics" || die "HAProxy's own /metrics"

"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/failover.py" "https://127.0.0.1:$https" "$work/cluster" \
    "127.0.0.1:${ports[3]},127.0.0.1:${ports[5]},127.0.0.1:${ports[7]}"

# The per-address limits, on a second HAProxy with low ones over the same gateways (5 new
# connections and 10 requests per 10 s from one address).
mapfile -t lp < <("$venv/bin/python" -c '
import socket
s = [socket.socket() for _ in range(3)]
[x.bind(("127.0.0.1", 0)) for x in s]
[print(x.getsockname()[1]) for x in s]')
SDSIM_HAPROXY_HTTPS="127.0.0.1:${lp[0]}" SDSIM_HAPROXY_HTTP="127.0.0.1:${lp[1]}" \
    SDSIM_HAPROXY_STATS="127.0.0.1:${lp[2]}" SDSIM_GATEWAY_1="127.0.0.1:${ports[3]}" \
    SDSIM_GATEWAY_2="127.0.0.1:${ports[5]}" SDSIM_GATEWAY_3="127.0.0.1:${ports[7]}" SDSIM_HAPROXY_SOURCE=127.0.0.2 \
    SDSIM_HAPROXY_CONN_RATE=5 SDSIM_HAPROXY_REQ_RATE=10 \
    haproxy -db -f "$SDSIM_ROOT/deploy/haproxy/haproxy.cfg" >"$work/haproxy-limits.log" 2>&1 &
limited=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:${lp[2]}/metrics" && break; sleep 0.1; done
count() { tr ' ' '\n' <<<"$2" | grep -c "^$1\$" || true; }
# One connection, 14 requests (curl reuses it for every URL): the 11th on are 429s.
urls=()
for _ in $(seq 1 14); do urls+=(-o /dev/null "https://127.0.0.1:${lp[0]}/livez"); done
codes="$(curl -ks -w '%{http_code} ' "${urls[@]}" || true)"
log "14 requests on one connection, limit 10 per 10 s: $codes"
[ "$(count 200 "$codes")" = 10 ] && [ "$(count 429 "$codes")" = 4 ] || die "request rate limit: $codes"
# Then 8 new connections: 4 more are accepted (5 in 10 s), the others refused at once.
codes=""
for _ in $(seq 1 8); do
    codes="$codes $(curl -ks -o /dev/null -w '%{http_code}' "https://127.0.0.1:${lp[0]}/livez" || true)"
done
log "8 more connections, limit 5 per 10 s:$codes"
[ "$(count 000 "$codes")" = 4 ] || die "connection rate limit: $codes"
kill -TERM "$limited" 2>/dev/null || true
wait "$limited" 2>/dev/null || true
limited=""
log "haproxy failover and limits: ok"
