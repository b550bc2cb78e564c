# Shared by deploy/run.sh and deploy/test.sh: make sure PostgreSQL and Redis answer on
# loopback, installing them with apt and starting project-local instances when needed.
#
# After `sdsim_services`, these are exported:
#   SDSIM_PG_BASE   postgres://USER@127.0.0.1:PORT  (a role that may create databases)
#   REDIS_URL       redis://127.0.0.1:PORT/
# DATABASE_URL / REDIS_URL given by the caller are used as they are.
#
# Local instances live in $SDSIM_LOCAL (default: .local/ in the repository): the PostgreSQL
# data directory, the Redis working directory and their logs. Nothing is started when a
# usable server already answers on the standard port.

set -euo pipefail

SDSIM_ROOT="${SDSIM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SDSIM_LOCAL="${SDSIM_LOCAL:-$SDSIM_ROOT/.local}"
PG_PORT="${SDSIM_PG_PORT:-5432}"
LOCAL_PG_PORT="${SDSIM_LOCAL_PG_PORT:-55432}"
REDIS_PORT="${SDSIM_REDIS_PORT:-6379}"
LOCAL_REDIS_PORT="${SDSIM_LOCAL_REDIS_PORT:-56379}"

# Debian keeps initdb's friends, runuser and haproxy in /usr/sbin, which a normal user's PATH
# lacks; rustup's cargo is in ~/.cargo/bin, which sudo and non-login shells leave out.
PATH="$PATH:/usr/sbin:/sbin"
if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
export PATH

log() { echo "[sdsim] $*" >&2; }
die() { echo "[sdsim] error: $*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root to run: $* (install it yourself or run as root)"
    fi
}

apt_install() {
    log "installing $* with apt"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
    echo ""
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_usable() { # $1: base URL (never a password prompt: -w, and no terminal to read)
    psql -w "$1/postgres" -Atqc "select 1" >/dev/null 2>&1 </dev/null
}

start_local_postgres() {
    local bindir dir owner
    bindir="$(pg_bindir)"
    [ -n "$bindir" ] || { apt_install postgresql postgresql-client; bindir="$(pg_bindir)"; }
    [ -n "$bindir" ] || die "PostgreSQL binaries not found after installing"
    dir="$SDSIM_LOCAL/postgres"
    mkdir -p "$SDSIM_LOCAL"
    local run=()
    if [ "$(id -u)" = 0 ]; then
        # PostgreSQL refuses to run as root: use the postgres account apt created.
        id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as"
        if ! runuser -u postgres -- test -x "$SDSIM_LOCAL"; then
            chmod o+x "$SDSIM_LOCAL" "$SDSIM_ROOT" 2>/dev/null || true
        fi
        if ! runuser -u postgres -- test -x "$SDSIM_LOCAL"; then
            dir="/var/lib/sdsim/postgres"
            log "the postgres user cannot reach $SDSIM_LOCAL; using $dir"
        fi
        mkdir -p "$dir"
        chown postgres "$dir"
        run=(runuser -u postgres --)
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
        log "creating a PostgreSQL cluster in $dir"
        "${run[@]}" "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >/dev/null
    fi
    if ! "${run[@]}" "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        log "starting PostgreSQL on 127.0.0.1:$LOCAL_PG_PORT"
        "${run[@]}" "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $LOCAL_PG_PORT -k $dir" start >/dev/null
    fi
}

ensure_postgres() {
    command -v psql >/dev/null || apt_install postgresql-client
    # Found once per run: the scripts a test run calls inherit it.
    if [ -n "${SDSIM_PG_BASE:-}" ] && pg_usable "$SDSIM_PG_BASE"; then
        export SDSIM_PG_BASE
        return
    fi
    if [ -n "${DATABASE_URL:-}" ]; then
        SDSIM_PG_BASE="${SDSIM_PG_BASE:-${DATABASE_URL%/*}}"
        export SDSIM_PG_BASE
        return
    fi
    local std="postgres://postgres@127.0.0.1:$PG_PORT"
    local own="postgres://postgres@127.0.0.1:$LOCAL_PG_PORT"
    if pg_usable "$std"; then
        SDSIM_PG_BASE="$std"
    elif pg_usable "$own"; then
        SDSIM_PG_BASE="$own"
    else
        if port_in_use "$PG_PORT"; then
            log "a PostgreSQL on port $PG_PORT refuses postgres@127.0.0.1; starting our own"
        fi
        start_local_postgres
        pg_usable "$own" || die "PostgreSQL did not come up on port $LOCAL_PG_PORT (see $SDSIM_LOCAL/postgres/server.log)"
        SDSIM_PG_BASE="$own"
    fi
    export SDSIM_PG_BASE
    log "PostgreSQL: $SDSIM_PG_BASE"
}

redis_usable() { # $1: port
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]
}

ensure_redis() {
    if [ -n "${REDIS_URL:-}" ]; then export REDIS_URL; return; fi
    command -v redis-server >/dev/null || apt_install redis-server redis-tools
    local port
    if redis_usable "$REDIS_PORT"; then
        port="$REDIS_PORT"
    elif redis_usable "$LOCAL_REDIS_PORT"; then
        port="$LOCAL_REDIS_PORT"
    else
        port="$LOCAL_REDIS_PORT"
        mkdir -p "$SDSIM_LOCAL/redis"
        log "starting Redis on 127.0.0.1:$port (data in $SDSIM_LOCAL/redis)"
        redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
            --dir "$SDSIM_LOCAL/redis" --logfile "$SDSIM_LOCAL/redis/redis.log" \
            --pidfile "$SDSIM_LOCAL/redis/redis.pid" --save "" --appendonly yes >/dev/null
        for _ in $(seq 1 50); do redis_usable "$port" && break; sleep 0.1; done
        redis_usable "$port" || die "Redis did not come up (see $SDSIM_LOCAL/redis/redis.log)"
    fi
    export REDIS_URL="redis://127.0.0.1:$port/"
    log "Redis: $REDIS_URL"
}

# Creates database $1 on $SDSIM_PG_BASE when missing.
ensure_database() {
    local name="$1"
    if ! psql "$SDSIM_PG_BASE/postgres" -Atqc "select 1 from pg_database where datname = '$name'" | grep -q 1; then
        log "creating database $name"
        psql "$SDSIM_PG_BASE/postgres" -qc "create database \"$name\"" >/dev/null
    fi
}

sdsim_services() {
    ensure_postgres
    ensure_redis
}

# A Python virtual environment with the packages of $2 (a requirements file), in the cache.
ensure_venv() {
    local venv="$1" req="$2"
    # A venv made without ensurepip (python3-venv missing) has python but no pip: made again.
    if [ ! -x "$venv/bin/pip" ]; then
        rm -rf "$venv"
        command -v python3 >/dev/null || apt_install python3 python3-venv
        python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
}

# A throwaway `sdsim up` for scripts (browser tests, benches, checks): `free_ports N PYTHON`
# fills the array `ports` with N free loopback ports; `stack_up BIN WORK DB PREFIX` exports
# the environment of a stack on ports[0..7] (fresh database DB, Redis prefix PREFIX, mail
# outbox WORK/outbox, abuse limits lifted: everything comes from loopback), migrates, starts
# it (log in WORK/sdsim.log), waits for /readyz (asked with PYTHON: no curl needed) and sets
# `pid` and `base`. The caller's trap
# stops "$pid" and drops DB. SDSIM_* already set (e.g. fault injection) are kept.
free_ports() {
    local n="$1" python="$2"
    mapfile -t ports < <("$python" - "$n" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
for s in socks: s.close()
PY
)
}

stack_up() {
    local bin="$1" work="$2" db="$3" prefix="$4" python="$5"
    psql "$SDSIM_PG_BASE/postgres" -qc "create database \"$db\"" >/dev/null
    export DATABASE_URL="$SDSIM_PG_BASE/$db"
    export SDSIM_REDIS__PREFIX="$prefix"
    export SDSIM_AUTH__JWT_SECRET="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 48)"
    export SDSIM_AUTH__BCRYPT_COST=4
    export SDSIM_AUTH__MIN_PASSWORD_SCORE=0
    export SDSIM_AUTH__LIMITS__REGISTER_PER_IP_PER_HOUR=10000
    export SDSIM_AUTH__LIMITS__MAIL_PER_IP_PER_HOUR=10000
    export SDSIM_AUTH__LIMITS__LOGIN_PER_IP_PER_MINUTE=10000
    export SDSIM_AUTH__LIMITS__REFRESH_PER_IP_PER_MINUTE=10000
    local limit
    for limit in READS_PER_MINUTE WRITES_PER_MINUTE RUN_STARTS_PER_MINUTE PER_ADDRESS_PER_MINUTE; do
        export "SDSIM_GATEWAY__RATE_LIMITS__$limit=${SDSIM_STACK_RATE_LIMITS:-0}"
    done
    export SDSIM_AUTH__MAIL__TRANSPORT=file
    export SDSIM_AUTH__MAIL__OUTBOX_DIR="$work/outbox"
    export SDSIM_GATEWAY__LISTEN__HTTP="127.0.0.1:${ports[0]}"
    export SDSIM_GATEWAY__LISTEN__GRPC="127.0.0.1:${ports[1]}"
    export SDSIM_AUTH__LISTEN__GRPC="127.0.0.1:${ports[2]}"
    export SDSIM_AUTH__LISTEN__HTTP="127.0.0.1:${ports[3]}"
    export SDSIM_PROJECT__LISTEN__GRPC="127.0.0.1:${ports[4]}"
    export SDSIM_PROJECT__LISTEN__HTTP="127.0.0.1:${ports[5]}"
    export SDSIM_SIMULATION__LISTEN__GRPC="127.0.0.1:${ports[6]}"
    export SDSIM_SIMULATION__LISTEN__HTTP="127.0.0.1:${ports[7]}"
    export SDSIM_AUTH__MAIL__PUBLIC_URL="http://127.0.0.1:${ports[0]}"
    export SDSIM_PROJECT__PUBLIC_URL="http://127.0.0.1:${ports[0]}"
    mkdir -p "$work/outbox"
    log "sdsim migrate on $db"
    "$bin" migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; die "migrate failed"; }
    log "sdsim up on 127.0.0.1:${ports[0]} (Redis prefix $prefix)"
    "$bin" up >"$work/sdsim.log" 2>&1 &
    pid=$!
    base="http://127.0.0.1:${ports[0]}"
    local _
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "sdsim up exited early"
        "$python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
            "$base/readyz" 2>/dev/null && return 0
        sleep 0.2
    done
    # Stopped here: the caller learns of `pid` only when this returns.
    kill "$pid" 2>/dev/null || true
    die "sdsim did not become ready"
}

# A tool a script needs, installed with apt when missing: `need COMMAND [PACKAGE]`.
need() {
    command -v "$1" >/dev/null || apt_install "${2:-$1}"
}

# What building sdsim needs besides PostgreSQL and Redis: cargo (rustup's; Debian's is too
# old for this workspace) and a C compiler and linker (ring, the TLS crates).
ensure_build_tools() {
    command -v cargo >/dev/null || die "cargo is needed to build sdsim: install Rust with https://rustup.rs (rustup's, not Debian's: the workspace needs Rust 1.88 or newer)"
    command -v cc >/dev/null || apt_install gcc libc6-dev
}
