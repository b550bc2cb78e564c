#!/usr/bin/env bash
# The deploy files that cannot run here, checked offline: deploy/checks/offline.sh <sdsim>
# Dockerfile and docker-compose.yml (compose.py), every Kubernetes manifest against the
# schemas of kubernetes-validate (k8s.py), the HAProxy configuration (`haproxy -c`, with
# the addresses of docker-compose.yml). A few seconds; starts nothing.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bin="${1:?usage: offline.sh <sdsim binary>}"
command -v haproxy >/dev/null || apt_install haproxy
need openssl
venv="${SDSIM_DEPLOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/deploy-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/deploy/checks/requirements.txt"

log "Dockerfile and docker-compose.yml"
"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/compose.py" "$bin"
log "Kubernetes manifests"
"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/k8s.py" "$bin"
log "haproxy -c (docker-compose addresses)"
cert="$(mktemp /tmp/sdsim-cert.XXXXXX.pem)"
trap 'rm -f "$cert"' EXIT
bash "$SDSIM_ROOT/deploy/haproxy/make-cert.sh" "$cert" >/dev/null
SDSIM_HAPROXY_HTTPS=0.0.0.0:8443 SDSIM_HAPROXY_HTTP=0.0.0.0:8080 SDSIM_HAPROXY_STATS=0.0.0.0:8404 \
    SDSIM_HAPROXY_CERT="$cert" SDSIM_GATEWAY_1=gateway1:8000 SDSIM_GATEWAY_2=gateway2:8000 \
    SDSIM_GATEWAY_3=gateway3:8000 SDSIM_HAPROXY_SOURCE=172.30.0.10 SDSIM_HAPROXY_CONN_RATE=200 SDSIM_HAPROXY_REQ_RATE=1000 \
    haproxy -c -q -f "$SDSIM_ROOT/deploy/haproxy/haproxy.cfg"
log "offline deploy checks: ok"
