#!/usr/bin/env bash
# The scaled setup on one machine: HAProxy (TLS on https://localhost:8443) in front of three
# gateways, two instances of each backend (auth, project, simulation), over the local
# PostgreSQL and Redis (started as deploy/run.sh does when missing). Every instance is its
# own `sdsim serve <service>` process on its own ports; discovery in Redis makes them find
# each other. Ctrl-C stops everything.
#
#   deploy/cluster.sh [path/to/sdsim]     (default: target/release/sdsim, built if missing)
#
# Ports (defaults; SDSIM_CLUSTER_PORTS="21 ports" overrides them all, in this order):
#   HAProxy  https 8443, http 8080 (redirects), stats 8404 (/stats, /metrics)
#   gateway1..3      HTTP 8000 8010 8020   gRPC 8001 8011 8021
#   auth1..2         gRPC 9000 9010        HTTP 9001 9011
#   project1..2      gRPC 10000 10010      HTTP 10001 10011
#   simulation1..2   gRPC 11000 11010      HTTP 11001 11011
# Logs and pid files: $SDSIM_CLUSTER_DIR (default .local/cluster): <instance>.log/.pid,
# haproxy.log; ports.env lists every address. Environment as deploy/run.sh: DATABASE_URL,
# REDIS_URL, SDSIM_* settings (given to every instance).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin="${1:-}"
dir="${SDSIM_CLUSTER_DIR:-$SDSIM_LOCAL/cluster}"
mkdir -p "$dir"
rm -f "$dir/ready"

command -v haproxy >/dev/null || apt_install haproxy
command -v curl >/dev/null || apt_install curl
command -v openssl >/dev/null || apt_install openssl

if [ -z "$bin" ]; then
    bin="${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/release/sdsim"
    if [ ! -x "$bin" ]; then
        command -v cargo >/dev/null || die "no sdsim binary: pass its path or install cargo"
        log "building sdsim (release)"
        (cd "$SDSIM_ROOT" && cargo build --release --quiet -p sdsim)
    fi
fi
[ -x "$bin" ] || die "$bin is not an executable"

sdsim_services
if [ -z "${DATABASE_URL:-}" ]; then
    ensure_database sdsim
    export DATABASE_URL="$SDSIM_PG_BASE/sdsim"
fi
if [ -z "${SDSIM_AUTH__JWT_SECRET:-}" ]; then
    if [ ! -s "$SDSIM_LOCAL/jwt_secret" ]; then
        (umask 077; head -c 48 /dev/urandom | base64 -w0 >"$SDSIM_LOCAL/jwt_secret")
    fi
    SDSIM_AUTH__JWT_SECRET="$(cat "$SDSIM_LOCAL/jwt_secret")"
fi
export SDSIM_AUTH__JWT_SECRET

read -r -a p <<<"${SDSIM_CLUSTER_PORTS:-8443 8080 8404 8000 8001 8010 8011 8020 8021 9000 9001 9010 9011 10000 10001 10010 10011 11000 11001 11010 11011}"
[ "${#p[@]}" = 21 ] || die "SDSIM_CLUSTER_PORTS needs 21 ports"
# name  service  grpc  http
instances=(
    "auth1 auth ${p[9]} ${p[10]}"
    "auth2 auth ${p[11]} ${p[12]}"
    "project1 project ${p[13]} ${p[14]}"
    "project2 project ${p[15]} ${p[16]}"
    "simulation1 simulation ${p[17]} ${p[18]}"
    "simulation2 simulation ${p[19]} ${p[20]}"
    "gateway1 gateway ${p[4]} ${p[3]}"
    "gateway2 gateway ${p[6]} ${p[5]}"
    "gateway3 gateway ${p[8]} ${p[7]}"
)

pids=()
stop_all() {
    local rc=$?
    trap - EXIT INT TERM
    log "stopping the cluster"
    # Gateways first (they close their WebSockets with 1001), then the backends, then HAProxy.
    local i pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    for _ in $(seq 1 150); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -f "$dir"/*.pid "$dir/ready"
    exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every instance knows every other one statically too (used when Redis is unreachable).
upstream() { # service
    local line list="" f
    for line in "${instances[@]}"; do
        read -r -a f <<<"$line"
        if [ "${f[1]}" = "$1" ]; then list="${list:+$list,}http://127.0.0.1:${f[2]}"; fi
    done
    echo "$list"
}
for svc in auth project simulation gateway; do
    declare "up_$svc=$(upstream "$svc")"
done

export SDSIM_UPSTREAM__AUTH="$up_auth"
export SDSIM_UPSTREAM__PROJECT="$up_project"
export SDSIM_UPSTREAM__SIMULATION="$up_simulation"
export SDSIM_UPSTREAM__GATEWAY="$up_gateway"
# Nine processes share one PostgreSQL: smaller pools, one migration before any starts.
export SDSIM_DATABASE__POOL_SIZE="${SDSIM_DATABASE__POOL_SIZE:-6}"
export SDSIM_DATABASE__MIGRATE_ON_START=false
# HAProxy reaches the gateways from its own loopback address: X-Forwarded-For is trusted from
# it only, so a client that reaches a gateway directly cannot choose its own address.
export SDSIM_HAPROXY_SOURCE="${SDSIM_HAPROXY_SOURCE:-127.0.0.2}"
export SDSIM_GATEWAY__TRUSTED_PROXIES="[\"$SDSIM_HAPROXY_SOURCE\"]"
export SDSIM_AUTH__MAIL__PUBLIC_URL="${SDSIM_AUTH__MAIL__PUBLIC_URL:-https://localhost:${p[0]}}"
export SDSIM_PROJECT__PUBLIC_URL="${SDSIM_PROJECT__PUBLIC_URL:-https://localhost:${p[0]}}"

log "sdsim migrate"
"$bin" migrate >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; die "migrate failed"; }

: >"$dir/ports.env"
start() { # name service grpc http
    local name="$1" svc="$2" grpc="$3" http="$4" key
    key="$(echo "$svc" | tr a-z A-Z)"
    env "SDSIM_${key}__LISTEN__GRPC=127.0.0.1:$grpc" "SDSIM_${key}__LISTEN__HTTP=127.0.0.1:$http" \
        "$bin" serve "$svc" >"$dir/$name.log" 2>&1 &
    pids+=($!)
    echo $! >"$dir/$name.pid"
    echo "${name}_http=127.0.0.1:$http ${name}_grpc=127.0.0.1:$grpc" >>"$dir/ports.env"
}
wait_ready() { # name http
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz" 2>/dev/null && return 0
        kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null || { tail -n 30 "$dir/$1.log" >&2; die "$1 exited"; }
        sleep 0.2
    done
    tail -n 30 "$dir/$1.log" >&2
    die "$1 did not become ready on :$2"
}

for line in "${instances[@]}"; do
    set -- $line
    start "$@"
done
for line in "${instances[@]}"; do
    set -- $line
    wait_ready "$1" "$4"
done
log "9 instances ready"

cert="${SDSIM_HAPROXY_CERT:-$SDSIM_LOCAL/haproxy/sdsim.pem}"
[ -s "$cert" ] || bash "$SDSIM_ROOT/deploy/haproxy/make-cert.sh" "$cert" >/dev/null
export SDSIM_HAPROXY_CERT="$cert"
export SDSIM_HAPROXY_HTTPS="${SDSIM_HAPROXY_HTTPS:-127.0.0.1:${p[0]}}"
export SDSIM_HAPROXY_HTTP="${SDSIM_HAPROXY_HTTP:-127.0.0.1:${p[1]}}"
export SDSIM_HAPROXY_STATS="${SDSIM_HAPROXY_STATS:-127.0.0.1:${p[2]}}"
export SDSIM_GATEWAY_1="127.0.0.1:${p[3]}" SDSIM_GATEWAY_2="127.0.0.1:${p[5]}" SDSIM_GATEWAY_3="127.0.0.1:${p[7]}"
export SDSIM_HAPROXY_CONN_RATE="${SDSIM_HAPROXY_CONN_RATE:-200}"
export SDSIM_HAPROXY_REQ_RATE="${SDSIM_HAPROXY_REQ_RATE:-1000}"
haproxy -c -q -f "$SDSIM_ROOT/deploy/haproxy/haproxy.cfg" || die "haproxy.cfg is not valid"
haproxy -db -f "$SDSIM_ROOT/deploy/haproxy/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
pids=("$!" "${pids[@]}") # stopped last
echo "${pids[0]}" >"$dir/haproxy.pid"
echo "haproxy_https=$SDSIM_HAPROXY_HTTPS haproxy_stats=$SDSIM_HAPROXY_STATS" >>"$dir/ports.env"
for _ in $(seq 1 100); do
    curl -ksf -o /dev/null "https://$SDSIM_HAPROXY_HTTPS/readyz" && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$dir/haproxy.log" >&2; die "haproxy exited"; }
    sleep 0.1
done
curl -ksf -o /dev/null "https://$SDSIM_HAPROXY_HTTPS/readyz" || die "HAProxy does not answer on $SDSIM_HAPROXY_HTTPS"

log "ready: https://$SDSIM_HAPROXY_HTTPS (self-signed: curl -k), stats http://$SDSIM_HAPROXY_STATS/stats"
log "logs in $dir; Ctrl-C stops everything"
echo ready >"$dir/ready"
# Runs until interrupted, or until HAProxy dies.
while kill -0 "${pids[0]}" 2>/dev/null; do sleep 1; done
die "haproxy exited (see $dir/haproxy.log)"
