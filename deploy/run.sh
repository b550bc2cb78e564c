#!/usr/bin/env bash
# Brings the whole system up on this machine: PostgreSQL and Redis (installed with apt and
# started on loopback if missing), the database, and all four services in one process
# (`sdsim up`): gateway on :8000 (REST, WebSocket) and :8001 (gRPC), auth :9000/:9001,
# project :10000/:10001, simulation :11000/:11001. Ctrl-C stops it.
#
# Environment: DATABASE_URL / REDIS_URL to use servers of your own; SDSIM_* settings
# (see deploy/sdsim.example.toml); SDSIM_CONFIG for a file; CARGO_TARGET_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sdsim_services
if [ -z "${DATABASE_URL:-}" ]; then
    ensure_database sdsim
    export DATABASE_URL="$SDSIM_PG_BASE/sdsim"
fi

# Tokens must survive a restart: keep one signing key per checkout.
if [ -z "${SDSIM_AUTH__JWT_SECRET:-}" ]; then
    mkdir -p "$SDSIM_LOCAL"
    if [ ! -s "$SDSIM_LOCAL/jwt_secret" ]; then
        (umask 077; head -c 48 /dev/urandom | base64 -w0 >"$SDSIM_LOCAL/jwt_secret")
    fi
    SDSIM_AUTH__JWT_SECRET="$(cat "$SDSIM_LOCAL/jwt_secret")"
    export SDSIM_AUTH__JWT_SECRET
fi

ensure_build_tools
log "building sdsim (release)"
(cd "$SDSIM_ROOT" && cargo build --release --quiet -p sdsim)
bin="${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/release/sdsim"

"$bin" migrate
log "starting sdsim: REST and WebSocket on http://127.0.0.1:8000 (try /health)"
exec "$bin" up "$@"
