#!/usr/bin/env bash
# Peer benchmark of the sdsim engine: one M/M/c model in sdsim, SimPy and Ciw, in the
# same run, and a table of requests simulated per second of wall time, mean wait error
# against Erlang C, and the ratio to SimPy.
#
# One command on a fresh clone: `benches/engine/run.sh`. It creates a Python virtual
# environment under the cache directory, installs the pinned peers from PyPI
# (peers/requirements.txt), builds the Rust binary with --release, runs every simulator
# REPEATS times and keeps each one's fastest run (the results are the same every time:
# each run uses the same seed; only the wall time varies with the machine's load).
#
# Environment (all optional):
#   LAMBDA MU SERVERS   the model, default 3.6 1 4: utilisation 0.9
#   PEER_CUSTOMERS      customers for SimPy, Ciw and the short sdsim run (default 200000)
#   SDSIM_CUSTOMERS     customers for the long sdsim run (default 20000000)
#   SEED                seed of every simulator (default 1)
#   REPEATS             runs of each simulator, the fastest kept (default 3)
#   SDSIM_CACHE_DIR     where the virtual environment lives
#                       (default ${XDG_CACHE_HOME:-$HOME/.cache}/sdsim)
#   CARGO_TARGET_DIR    cargo's target directory (default: the workspace's target/)
#   PYTHON              the interpreter that creates the virtual environment
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${SDSIM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim}"
venv="$cache/bench-engine-venv"
lambda="${LAMBDA:-3.6}"
mu="${MU:-1}"
c="${SERVERS:-4}"
peer_n="${PEER_CUSTOMERS:-200000}"
sdsim_n="${SDSIM_CUSTOMERS:-20000000}"
seed="${SEED:-1}"
repeats="${REPEATS:-3}"

python="${PYTHON:-$(command -v python3 || command -v python || true)}"
if [ -z "$python" ]; then
    echo "error: no python3 found; install Python 3.9 or newer (with its venv module)" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "creating the virtual environment $venv" >&2
    mkdir -p "$cache"
    if ! "$python" -m venv "$venv"; then
        echo "error: '$python -m venv' failed; on Debian or Ubuntu install python3-venv" >&2
        rm -rf "$venv"
        exit 1
    fi
fi
echo "installing the pinned peers: $(grep -v '^#' "$here/peers/requirements.txt" | tr '\n' ' ')" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/peers/requirements.txt"

echo "building mmc_peer (release)" >&2
(cd "$root" && cargo build --quiet --release -p sdsim-bench-engine --bin mmc_peer)
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
peer_bin="$target/release/mmc_peer"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
echo "running M/M/$c at utilisation $(awk "BEGIN { print $lambda / ($c * $mu) }"):" \
    "sdsim ($peer_n and $sdsim_n customers), SimPy and Ciw ($peer_n customers), best of $repeats" >&2
for _ in $(seq "$repeats"); do
    "$peer_bin" "$lambda" "$mu" "$c" "$peer_n" "$seed" >>"$out"
    "$peer_bin" "$lambda" "$mu" "$c" "$sdsim_n" "$seed" >>"$out"
    "$venv/bin/python" "$here/peers/simpy_mmc.py" "$lambda" "$mu" "$c" "$peer_n" "$seed" >>"$out"
    "$venv/bin/python" "$here/peers/ciw_mmc.py" "$lambda" "$mu" "$c" "$peer_n" "$seed" >>"$out"
done
"$venv/bin/python" "$here/peers/table.py" "$lambda" "$mu" "$c" <"$out"
