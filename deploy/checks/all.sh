#!/usr/bin/env bash
# Every deploy check, from deploy/test.sh: deploy/checks/all.sh <sdsim binary>
#   offline.sh           Dockerfile, docker-compose.yml, Kubernetes manifests, haproxy -c
#   prometheus.sh        promtool; a real Prometheus over a live sdsim: rules and dashboards
#   haproxy_failover.sh  HAProxy + three gateways: SIGKILL under load, WebSocket resume, limits
#   api_fuzz.sh          Schemathesis over GET /api/openapi.json, signed in: no 5xx, every
#                        status, content type, header and body as the document declares
# About two minutes in all. Each check stops what it started and drops its database.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:?usage: all.sh <sdsim binary>}"
bash "$here/offline.sh" "$bin"
bash "$here/prometheus.sh" "$bin"
bash "$here/haproxy_failover.sh" "$bin"
bash "$here/api_fuzz.sh" "$bin"
