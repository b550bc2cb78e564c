#!/usr/bin/env bash
# The REST API against its own OpenAPI document: deploy/checks/api_fuzz.sh <sdsim binary>
#
# `sdsim up` on free loopback ports (fresh database, own Redis prefix, rate limits off), a
# user registered and logged in through the API with a few projects, share links and runs
# (api_fuzz.py seed), then Schemathesis (requirements-fuzz.txt, pinned) generates requests
# for every operation of GET /api/openapi.json, valid and invalid, with that user's bearer
# token (in the schemathesis.toml the seed writes), and checks each answer: no 5xx, and a
# status, content type, headers and body that the document declares for that operation.
# Not the checks that want a 2xx for any input that looks valid (positive_data_acceptance,
# ...): random ids are 404 by design. About a minute. Stops the stack, drops the database
# and deletes the Redis keys however it ends; exits non-zero on any failure, with the
# request, the answer and a curl line of each.
#
# SDSIM_FUZZ_EXAMPLES (default 20) cases per operation and phase, SDSIM_FUZZ_WORKERS
# (default 4), SDSIM_FUZZ_SEED (default fixed, so CI replays the same cases; `random` for a
# fresh one, printed: rerun with it to replay),
# SDSIM_FUZZ_ARGS more `st run` options (e.g. "--report junit,har --report-har-path /tmp/x"),
# SDSIM_KEEP_LOGS=<dir> keeps the logs, the document and Schemathesis's output there.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bin="${1:?usage: api_fuzz.sh <sdsim binary>}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
sdsim_services
venv="${SDSIM_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/sdsim/fuzz-venv}"
ensure_venv "$venv" "$SDSIM_ROOT/deploy/checks/requirements-fuzz.txt"

work="$(mktemp -d /tmp/sdsim-api-fuzz.XXXXXX)"
db="sdsim_api_fuzz_$(date +%s)_$$"
prefix="api-fuzz-$$-$(date +%s):"
pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    trap '' PIPE
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$SDSIM_PG_BASE/postgres" -qc "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || true
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" 2>/dev/null \
        | xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
    # The server's side of a failure: its errors and warnings (a 5xx's cause is there).
    if [ "$rc" != 0 ] && [ -f "$work/sdsim.log" ]; then
        log "--- sdsim.log (errors and warnings, last 30)"
        sed 's/\x1b\[[0-9;]*m//g' "$work/sdsim.log" | grep -E '^\S+ +(ERROR|WARN) ' | tail -n 30 >&2 || true
    fi
    # SDSIM_KEEP_LOGS=<dir>: the stack's log, the document, Schemathesis's output, config and
    # reports kept there.
    if [ -n "${SDSIM_KEEP_LOGS:-}" ]; then
        cp -r "$work"/*.log "$work"/schemathesis.* "$work/openapi.json" "$work/report" "$SDSIM_KEEP_LOGS/" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_ports 8 "$venv/bin/python"
export SDSIM_SHUTDOWN__GRACE_MS=500
stack_up "$bin" "$work" "$db" "$prefix" "$venv/bin/python"
pids+=("$pid")

log "seeding a user, projects, share links and runs"
"$venv/bin/python" "$SDSIM_ROOT/deploy/checks/api_fuzz.py" seed "$base" "$work"

seed="${SDSIM_FUZZ_SEED:-20261204}"
[ "$seed" = random ] && seed="$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
# Left out, as they would end the session or lock the account for the rest of the run:
#   POST /api/auth/logout                 ends the session (every one with all_sessions)
#   POST /api/auth/password               a change ends the other sessions; wrong current
#                                         passwords count towards the account's lockout
#   DELETE /api/auth/sessions/{session_id} ends a session, and GET /api/auth/sessions shows
#                                         the fuzzer the id of its own
# Kept: /api/admin/* (the user is no admin: they must answer 403, which is checked; as an
# admin the fuzzer could lock its own account or end its sessions, with the ids it finds in
# GET /api/admin/users), /api/auth/refresh and the password reset (the fuzzer has no valid
# refresh or reset token: 401/4xx).
excluded=(
    --exclude-name "POST /api/auth/logout"
    --exclude-name "POST /api/auth/password"
    --exclude-name "DELETE /api/auth/sessions/{session_id}"
)
checks=not_a_server_error,status_code_conformance,content_type_conformance
checks+=,response_headers_conformance,response_schema_conformance

log "schemathesis $("$venv/bin/st" --version | awk '{print $NF}') on $base/api/openapi.json (seed $seed)"
started=$SECONDS
# Run from $work: Schemathesis keeps its cache and reports in the working directory. The
# hooks module works around a CPython 3.11 bug of ast.parse in threads (see there).
(
    cd "$work"
    export SCHEMATHESIS_HOOKS="$SDSIM_ROOT/deploy/checks/api_fuzz_hooks.py"
    exec "$venv/bin/st" --config-file "$work/schemathesis.toml" run "$base/api/openapi.json" \
        --checks "$checks" \
        "${excluded[@]}" \
        --phases examples,coverage,fuzzing \
        --max-examples "${SDSIM_FUZZ_EXAMPLES:-20}" \
        --workers "${SDSIM_FUZZ_WORKERS:-4}" \
        --seed "$seed" \
        --generation-database none \
        --request-timeout 15 \
        --continue-on-failure \
        --report junit --report-junit-path "$work/report/junit.xml" \
        --no-color \
        ${SDSIM_FUZZ_ARGS:-}
) >"$work/schemathesis.out" 2>&1 &
pids+=($!) # in the background, so that a signal stops it at once (the trap then kills it)
rc=0
wait "$!" || rc=$?

# On failure all of Schemathesis's output (each failure with its request, answer and a curl
# line); otherwise its closing summary.
if [ "$rc" != 0 ]; then
    cat "$work/schemathesis.out"
else
    sed -n '/= SUMMARY =/,$p' "$work/schemathesis.out" | grep -v '^\s*$' || true
fi
if [ -f "$work/report/junit.xml" ]; then
    "$venv/bin/python" "$SDSIM_ROOT/deploy/checks/api_fuzz.py" summary "$work/report/junit.xml"
fi
[ "$rc" = 0 ] || die "schemathesis found failures (seed $seed; exit $rc) after $((SECONDS - started)) s"
log "api fuzz: ok ($((SECONDS - started)) s, seed $seed)"
