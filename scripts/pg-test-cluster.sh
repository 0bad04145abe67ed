#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the tests of the PostgreSQL metadata
# backend (tests/pg_meta.rs, docs/scale-out.md): a fresh data folder in
# /tmp, a free port on 127.0.0.1, fsync off, TLS on with its own
# certificate from its own CA; stopped and removed when the shell exits.
#
#   source scripts/pg-test-cluster.sh        # in a script (test.sh does this)
#   scripts/pg-test-cluster.sh CMD ARGS...   # runs CMD with the cluster up
#
# Defines pg_test_cluster_restart and pg_test_cluster_stop. Exports:
#   TESSERA_TEST_PG      postgres://tessera@127.0.0.1:PORT/postgres?sslmode=disable
#   TESSERA_TEST_PG_DIR  the cluster's folder (data/, log, the socket)
#   TESSERA_TEST_PG_CA   the CA of the server's certificate (for localhost and
#                        127.0.0.1), to test sslmode=require with --meta-ca
#
# fsync=off is safe here: the tests kill processes, never the machine, and
# synchronous_commit stays on. TESSERA_TEST_PG_FSYNC=on turns it on (the
# benchmark of scripts/bench-gateways.sh). Each run gets its own folder and port, so
# parallel runs never meet. initdb refuses to run as root: as root, the
# cluster runs as the `postgres` user (created if missing).

_pgtc_fail() {
    echo "pg-test-cluster: $*" >&2
    return 1
}

# The newest PostgreSQL bin folder; installs Debian's PostgreSQL if none.
_pgtc_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [[ -z $bin || ! -x $bin/initdb ]]; then
        [[ $(id -u) == 0 ]] || _pgtc_fail "PostgreSQL is not installed (apt-get install postgresql, as root)" || return 1
        echo "pg-test-cluster: installing PostgreSQL (apt-get install postgresql)" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2 || return 1
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    fi
    [[ -x $bin/initdb ]] || _pgtc_fail "no initdb under /usr/lib/postgresql/*/bin" || return 1
    echo "$bin"
}

# Runs a command as the cluster's owner: `postgres` when we are root.
_pgtc_as_owner() {
    if [[ $(id -u) == 0 ]]; then
        (cd "$TESSERA_TEST_PG_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$TESSERA_TEST_PG_DIR" && "$@")
    fi
}

# A port nothing listens on: the kernel's pick, or without python3 a random
# one that refuses a connection.
_pgtc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null &&
        return 0
    local port _
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
    done
    _pgtc_fail "no free port found"
}

# A CA of its own and a server certificate it signs, for localhost and
# 127.0.0.1 (rustls refuses a CA certificate as the server's own); none if
# openssl is missing.
_pgtc_certificate() {
    local dir=$1
    command -v openssl >/dev/null || return 0
    {
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tessera test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.crt" &&
            openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
                -keyout "$dir/server.key" -out "$dir/server.csr" &&
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
                >"$dir/server.ext" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
                -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt"
    } >/dev/null 2>&1 || { rm -f "$dir"/server.* "$dir"/ca.*; return 0; }
    rm -f "$dir/ca.key" "$dir/server.csr" "$dir/server.ext"
    chmod 600 "$dir/server.key"
}

pg_test_cluster_stop() {
    [[ -n ${TESSERA_TEST_PG_DIR:-} && -d ${TESSERA_TEST_PG_DIR:-} ]] || return 0
    _pgtc_as_owner "$_PGTC_BIN/pg_ctl" -D "$TESSERA_TEST_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$TESSERA_TEST_PG_DIR"
    unset TESSERA_TEST_PG TESSERA_TEST_PG_DIR TESSERA_TEST_PG_CA
}

# Restarts the cluster as a crash would (`immediate`: no checkpoint, every
# connection cut, crash recovery at start), with the options it had; with
# an argument, it stays down that many seconds first.
pg_test_cluster_restart() {
    local ctl=("$_PGTC_BIN/pg_ctl" -D "$TESSERA_TEST_PG_DIR/data")
    if [[ -n ${1:-} ]]; then
        _pgtc_as_owner "${ctl[@]}" -m immediate -w stop >/dev/null || return 1
        sleep "$1"
    fi
    _pgtc_as_owner "${ctl[@]}" -m immediate -w -t 60 restart >/dev/null 2>&1
}

# Runs pg_test_cluster_stop on exit, before whatever EXIT trap was set
# (the chain survives: a later script does the same with ours).
_pgtc_trap() {
    local previous=""
    eval "set -- $(trap -p EXIT)"
    [[ $# -ge 3 ]] && previous=$3
    # shellcheck disable=SC2064
    trap "pg_test_cluster_stop${previous:+; $previous}" EXIT
    [[ -n $(trap -p INT) ]] || trap 'exit 130' INT
    [[ -n $(trap -p TERM) ]] || trap 'exit 143' TERM
}

pg_test_cluster_start() {
    local bin port dir ssl=()
    bin=$(_pgtc_bin) || return 1
    _PGTC_BIN=$bin
    if [[ $(id -u) == 0 ]] && ! id -u postgres >/dev/null 2>&1; then
        useradd --system --no-create-home postgres || return 1
    fi
    dir=$(mktemp -d /tmp/tessera-pg.XXXXXX) || return 1
    export TESSERA_TEST_PG_DIR=$dir
    _pgtc_trap
    _pgtc_certificate "$dir"
    [[ $(id -u) == 0 ]] && chown -R postgres: "$dir"
    port=$(_pgtc_free_port) || return 1
    _pgtc_as_owner "$bin/initdb" -D "$dir/data" -U tessera --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; _pgtc_fail "initdb failed"; return 1; }
    if [[ -f $dir/server.crt ]]; then
        ssl=(-c ssl=on -c "ssl_cert_file=$dir/server.crt" -c "ssl_key_file=$dir/server.key")
        export TESSERA_TEST_PG_CA=$dir/ca.crt
    fi
    _pgtc_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=${TESSERA_TEST_PG_FSYNC:-off} \
            -c full_page_writes=off ${ssl[*]}" start >/dev/null ||
        { cat "$dir/log" >&2; _pgtc_fail "the cluster did not start"; return 1; }
    export TESSERA_TEST_PG="postgres://tessera@127.0.0.1:$port/postgres?sslmode=disable"
    echo "pg-test-cluster: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    pg_test_cluster_start
    if [[ $# -gt 0 ]]; then
        "$@"
    else
        echo "TESSERA_TEST_PG=$TESSERA_TEST_PG"
        echo "(running until Ctrl-C)"
        while true; do sleep 3600; done
    fi
else
    pg_test_cluster_start
fi
