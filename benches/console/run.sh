#!/usr/bin/env bash
# The console's figures (no assertions): the page's own assets, compressed as the gateway
# sends them, and time to interactive on loopback, in Debian's Chromium against `sdsim up`.
#
#   benches/console/run.sh <path to the sdsim binary>
#
# Goals from issue 22: under 500 KB compressed and under one second. Then a live run of the
# 63-component large_platform template at ten windows a second (issue 23: from a window's
# arrival to the frame that paints it, p95 under 50 ms, none dropped).
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/lib.sh"

bin="${1:?usage: benches/console/run.sh <path to the sdsim binary>}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[ -x "$bin" ] || die "$bin is not an executable"

sdsim_services
command -v chromium >/dev/null || apt_install chromium
venv="${SDSIM_CONSOLE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/console-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/console/tests/requirements.txt"
source "$SDSIM_ROOT/console/tests/stack.sh"

SDSIM_CONSOLE_URL="$base" SDSIM_CHROMIUM="${SDSIM_CHROMIUM:-$(command -v chromium)}" \
SDSIM_CONSOLE_WEB="$SDSIM_ROOT/console/web" \
    "$venv/bin/python" "$SDSIM_ROOT/benches/console/bench.py"
SDSIM_CONSOLE_URL="$base" SDSIM_CHROMIUM="${SDSIM_CHROMIUM:-$(command -v chromium)}" \
    "$venv/bin/python" "$SDSIM_ROOT/benches/console/live.py"
