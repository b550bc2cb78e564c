#!/usr/bin/env bash
# Prometheus rules and Grafana dashboards against the real thing:
#   deploy/checks/prometheus.sh <sdsim binary>
#
# `promtool check rules` and `promtool check config` (Debian's prometheus package), then
# `sdsim up` on free loopback ports (fresh database, own Redis prefix, fault injection on),
# HAProxy in front of it (for the haproxy_* names of the dashboards) and a real Prometheus
# scraping every HTTP port each second with deploy/prometheus/'s rules. prometheus_check.py
# drives traffic, then asserts that every metric a rule or dashboard names exists, every rule
# evaluates and every dashboard query runs. Stops everything it started and drops the
# database however it ends. About 20 s.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bin="${1:?usage: prometheus.sh <sdsim binary>}"
command -v promtool >/dev/null || apt_install prometheus
command -v haproxy >/dev/null || apt_install haproxy
need curl
need openssl
sdsim_services
venv="${SDSIM_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/deploy-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/deploy/checks/requirements.txt"
prom_dir="$SDSIM_ROOT/deploy/prometheus"

log "promtool check rules / config"
promtool check rules "$prom_dir/recording.yml" "$prom_dir/alerts.yml" >/dev/null
promtool check config "$prom_dir/prometheus.yml" >/dev/null
promtool check config "$prom_dir/prometheus-cluster.yml" >/dev/null
promtool test rules "$prom_dir/tests.yml"

work="$(mktemp -d /tmp/sdsim-prometheus-check.XXXXXX)"
db="sdsim_prometheus_$(date +%s)_$$"
prefix="prometheus-check-$$-$(date +%s):"
pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    trap '' PIPE
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    if [ "$rc" != 0 ]; then
        for f in "$work"/*.log; do
            [ -f "$f" ] || continue
            log "--- $(basename "$f") (last lines)"; tail -n 15 "$f" >&2
        done
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_ports 12 "$venv/bin/python"
export SDSIM_ADMIN__FAULT_INJECTION=true
export SDSIM_SHUTDOWN__GRACE_MS=500
stack_up "$bin" "$work" "$db" "$prefix" "$venv/bin/python"
pids+=("$pid")

# HAProxy in front (its exporter is scraped as job haproxy).
bash "$SDSIM_ROOT/deploy/haproxy/make-cert.sh" "$work/sdsim.pem" >/dev/null
SDSIM_HAPROXY_HTTPS="127.0.0.1:${ports[8]}" SDSIM_HAPROXY_HTTP="127.0.0.1:${ports[9]}" \
    SDSIM_HAPROXY_STATS="127.0.0.1:${ports[10]}" SDSIM_HAPROXY_CERT="$work/sdsim.pem" \
    SDSIM_GATEWAY_1="127.0.0.1:${ports[0]}" SDSIM_GATEWAY_2="127.0.0.1:${ports[0]}" \
    SDSIM_GATEWAY_3="127.0.0.1:${ports[0]}" SDSIM_HAPROXY_SOURCE=127.0.0.2 SDSIM_HAPROXY_CONN_RATE=100000 SDSIM_HAPROXY_REQ_RATE=100000 \
    haproxy -db -f "$SDSIM_ROOT/deploy/haproxy/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

# Prometheus: the repository's rules, every HTTP port as its service's job, 1 s intervals.
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $prom_dir/recording.yml
  - $prom_dir/alerts.yml
scrape_configs:
  - job_name: sdsim-gateway
    static_configs: [{targets: ["127.0.0.1:${ports[0]}"]}]
  - job_name: sdsim-auth
    static_configs: [{targets: ["127.0.0.1:${ports[3]}"]}]
  - job_name: sdsim-project
    static_configs: [{targets: ["127.0.0.1:${ports[5]}"]}]
  - job_name: sdsim-simulation
    static_configs: [{targets: ["127.0.0.1:${ports[7]}"]}]
  - job_name: haproxy
    static_configs: [{targets: ["127.0.0.1:${ports[10]}"]}]
EOF
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:${ports[11]}" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)

log "metrics at start-up (before any traffic)"
"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/prometheus_check.py" startup \
    "http://127.0.0.1:${ports[0]},http://127.0.0.1:${ports[3]},http://127.0.0.1:${ports[5]},http://127.0.0.1:${ports[7]}"
log "driving traffic through $base"
"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/prometheus_check.py" drive "$base" "http://127.0.0.1:${ports[3]}"
# A request through HAProxy, so its frontend and backend series have samples.
curl -ks -o /dev/null "https://127.0.0.1:${ports[8]}/health" || true
prom="http://127.0.0.1:${ports[11]}"
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$prom/-/ready" 2>/dev/null && break; sleep 0.2; done
"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/prometheus_check.py" check "$prom"
log "prometheus rules and dashboards: ok"
