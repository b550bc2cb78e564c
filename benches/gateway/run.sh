#!/usr/bin/env bash
# Gateway benchmark from one command: PostgreSQL and Redis (as deploy/run.sh starts them),
# wrk (apt) if missing, release builds of sdsim and the bench, then the table (see
# benches/gateway/src/main.rs). BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_ROUNDS tune it.
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"
sdsim_services
command -v wrk >/dev/null || apt_install wrk
cd "$SDSIM_ROOT"
cargo build --release --quiet --locked -p sdsim -p sdsim-bench-gateway
target="${CARGO_TARGET_DIR:-target}"
SDSIM_BIN="$target/release/sdsim" "$target/release/gateway_bench"
