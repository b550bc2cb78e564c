# Sourced by console/tests/run.sh and benches/console/run.sh (after deploy/lib.sh and
# `sdsim_services`): starts `sdsim up` from "$bin" on free loopback ports, on a fresh database
# with its own Redis prefix and a temporary mail outbox; waits for /readyz. A trap stops the
# stack and drops the database however the script ends. Sets $base and $work (the outbox is
# $work/outbox); needs $venv (a Python for picking free ports).
work="$(mktemp -d /tmp/sdsim-console-tests.XXXXXX)"
db="sdsim_console_$(date +%s)_$$"
pid=""

cleanup() {
    local rc=$?
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    if [ "$rc" != 0 ] && [ -f "$work/sdsim.log" ]; then
        log "the stack's last log lines:"; tail -n 40 "$work/sdsim.log" >&2 || true
    fi
    rm -rf "$work"
    if [ -n "${shots:-}" ]; then log "screenshots: $shots"; fi
    exit "$rc"
}
trap cleanup EXIT INT TERM

free_ports 10 "$venv/bin/python"
stack_up "$bin" "$work" "$db" "console-test-$$-$(date +%s):" "$venv/bin/python"
