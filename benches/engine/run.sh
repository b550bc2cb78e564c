#!/usr/bin/env bash
# Peer benchmark of the sdsim engine: one M/M/c model in sdsim, SimPy and Ciw, in the
# same run, and a table of requests simulated per second of wall time, mean wait error
# against Erlang C, and the ratio to SimPy.
#
# One command on a fresh clone: `benches/engine/run.sh`. It creates a Python virtual
# environment under the cache directory, installs the pinned peers from PyPI, and builds
# the Rust binary with --release.
#
# Environment: LAMBDA MU SERVERS (model, default 3.6 1 4: utilisation 0.9),
# PEER_CUSTOMERS (SimPy and Ciw, default 200000), SDSIM_CUSTOMERS (the long sdsim run,
# default 20000000), SEED, CARGO_TARGET_DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sdsim"
venv="$cache/bench-engine-venv"
lambda="${LAMBDA:-3.6}"
mu="${MU:-1}"
c="${SERVERS:-4}"
peer_n="${PEER_CUSTOMERS:-200000}"
sdsim_n="${SDSIM_CUSTOMERS:-20000000}"
seed="${SEED:-1}"

python="$(command -v python3 || command -v python)"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    mkdir -p "$cache"
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/peers/requirements.txt"

echo "building the sdsim engine benchmark (release)" >&2
(cd "$root" && cargo build --quiet --release -p sdsim-bench-engine --bin mmc_peer)
target="${CARGO_TARGET_DIR:-$root/target}"
peer_bin="$target/release/mmc_peer"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "running M/M/$c in sdsim ($peer_n and $sdsim_n customers), SimPy and Ciw ($peer_n customers)" >&2
"$peer_bin" "$lambda" "$mu" "$c" "$peer_n" "$seed" >>"$out"
"$peer_bin" "$lambda" "$mu" "$c" "$sdsim_n" "$seed" >>"$out"
"$venv/bin/python" "$here/peers/simpy_mmc.py" "$lambda" "$mu" "$c" "$peer_n" "$seed" >>"$out"
"$venv/bin/python" "$here/peers/ciw_mmc.py" "$lambda" "$mu" "$c" "$peer_n" "$seed" >>"$out"
"$venv/bin/python" "$here/peers/table.py" "$lambda" "$mu" "$c" <"$out"
