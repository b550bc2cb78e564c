#!/usr/bin/env bash
# Auth benchmark from one command: PostgreSQL and Redis as deploy/ starts them, h2load, a release
# build, then the measurements (see benches/auth/src/main.rs). BENCH_SECONDS, BENCH_RATE and
# BCRYPT_COST tune it.
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"
sdsim_services
# h2load (nghttp2): the second, lighter load generator.
if ! command -v h2load >/dev/null; then
    apt_install nghttp2-client || log "no h2load: its rows are skipped"
fi
cd "$SDSIM_ROOT"
cargo build --release --quiet -p sdsim-bench-auth
SDSIM_LOG="${SDSIM_LOG:-warn}" "${CARGO_TARGET_DIR:-$SDSIM_ROOT/target}/release/auth_bench"
