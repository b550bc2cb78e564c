#!/usr/bin/env bash
# Runs every test: starts PostgreSQL and Redis if needed (as deploy/run.sh does), prepares
# the Python environment of the off-the-shelf gRPC client check, then `cargo test` over the
# whole workspace, then the console's browser tests (console/tests/run.sh: Chromium from apt,
# Playwright from PyPI), then the deployment checks (deploy/checks/all.sh: HAProxy,
# Prometheus, Kubernetes schemas, the REST API fuzzed against its OpenAPI document). Each
# test creates its own database and Redis prefix and drops them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_build_tools
sdsim_services
export SDSIM_TEST_POSTGRES_URL="$SDSIM_PG_BASE"
export SDSIM_TEST_REDIS_URL="$REDIS_URL"

venv="${SDSIM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/grpc-venv}"
log "Python gRPC client in $venv"
ensure_venv "$venv" "$SDSIM_ROOT/deploy/grpc-check/requirements.txt"
export SDSIM_TEST_PYTHON="$venv/bin/python"
# The mesh tests stop and restart a redis-server of their own.
command -v redis-server >/dev/null || apt_install redis-server

cd "$SDSIM_ROOT"
# The crate graph is an invariant (ARCHITECTURE.md): the gateway and the mesh bench reach the
# services over gRPC, never their crates, and only sdsim-simulation has the engine.
log "crate graph"
for crate in sdsim-gateway sdsim-bench-mesh sdsim-runtime; do
    # Read first: a failing `cargo tree` must fail the run, not pass the check.
    tree="$(cargo tree --locked -p "$crate" -e normal --prefix none)"
    if grep -E '^(bcrypt|lettre|zxcvbn|sdsim-engine|sdsim-auth|sdsim-project|sdsim-simulation) ' <<<"$tree"; then
        echo "$crate must not depend on the crates above (see ARCHITECTURE.md)" >&2
        exit 1
    fi
done
log "cargo test --workspace"
cargo test --workspace --locked "$@"
# The console in a real Chromium, against the debug binary `cargo test` just built.
log "console: browser tests"
bash "$SDSIM_ROOT/console/tests/run.sh" "${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/debug/sdsim"
# Deployment: Dockerfile, compose and Kubernetes checked offline, Prometheus rules and
# dashboards against a live scrape (every metric exists from start-up), HAProxy failover,
# Schemathesis over the OpenAPI document.
log "deploy checks"
SDSIM_METRICS_STRICT=1 bash "$SDSIM_ROOT/deploy/checks/all.sh" "${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/debug/sdsim"
