#!/usr/bin/env bash
# Mesh benchmark from one command: a release build, then the pool's overhead per call against
# a bare tonic channel to the same loopback server (see benches/mesh/src/main.rs).
# BENCH_CALLS and BENCH_CONCURRENCY tune it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --quiet -p sdsim-bench-mesh
"${CARGO_TARGET_DIR:-target}/release/mesh_bench"
