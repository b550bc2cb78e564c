#!/usr/bin/env bash
# Project benchmark from one command: PostgreSQL and Redis (as deploy/run.sh starts them),
# wrk (apt) if missing, release builds of sdsim and the bench, then the table (see
# benches/project/src/main.rs). BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_RATE tune it;
# BENCH_TRACE=<dir> writes each paced run's latencies.
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"
sdsim_services
command -v wrk >/dev/null || apt_install wrk
cd "$SDSIM_ROOT"
cargo build --release --quiet --locked -p sdsim -p sdsim-bench-project
target="${CARGO_TARGET_DIR:-target}"
SDSIM_BIN="$target/release/sdsim" "$target/release/project_bench"
