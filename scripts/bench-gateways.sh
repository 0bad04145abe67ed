#!/usr/bin/env bash
# One gateway against two over PostgreSQL, beside the embedded redb server,
# on this machine, in one run (docs/performance.md, "Several gateways"):
# `tessera bench small` (4 KiB PUTs, then GETs) and `put` (1 MiB PUTs). With
# two gateways, two `tessera bench` processes run at once, each with half the
# requests in flight against its own gateway, and their rates are added.
# PostgreSQL is a throw-away cluster (scripts/pg-test-cluster.sh) with fsync
# ON, so its commits are as durable as redb's.
#
#   scripts/bench-gateways.sh             # builds release first
#   BENCH_BIN=/path/to/tessera ...        # that binary instead
#   BENCH_COUNT=2000 BENCH_CONCURRENCY=16 # small objects and requests in flight
set -euo pipefail
cd "$(dirname "$0")/.."

[[ -n ${BENCH_BIN:-} ]] || cargo build --release --quiet
bin=${BENCH_BIN:-target/release/tessera}
count=${BENCH_COUNT:-4000}
concurrency=${BENCH_CONCURRENCY:-16}
work=$(mktemp -d "$PWD/target/bench-gateways.XXXXXX")
TESSERA_ACCESS_KEY=BENCH$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
TESSERA_SECRET_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
export TESSERA_ACCESS_KEY TESSERA_SECRET_KEY

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
TESSERA_TEST_PG_FSYNC=on source scripts/pg-test-cluster.sh >"$work/pg.log" 2>&1 || { cat "$work/pg.log"; exit 1; }

# serve NAME ARGS...: starts `tessera serve ARGS` on a free port; sets ENDPOINT.
serve() {
    local name=$1 out="$work/$1.out"
    shift
    "$bin" serve --listen 127.0.0.1:0 --console off "$@" >"$out" 2>"$work/$name.log" &
    pids+=("$!")
    ENDPOINT=""
    for _ in $(seq 200); do
        ENDPOINT=$(sed -n 's/.*listening on \(http:[0-9.:/]*\).*/\1/p' "$out")
        [[ -n $ENDPOINT ]] && return 0
        sleep 0.1
    done
    cat "$work/$name.log" >&2
    exit 1
}

# rate ENDPOINT IN_FLIGHT SCENARIO [ARGS...]: the ops/s of each timed phase, one per line.
rate() {
    local endpoint=$1 in_flight=$2
    shift 2
    "$bin" bench "$@" --endpoint "$endpoint" --concurrency "$in_flight" --no-limits --json |
        python3 -c '
import json, re, sys
for r in json.load(sys.stdin)["results"]:
    phase = re.match(r"[a-z ]+", r["scenario"]).group(0).strip().replace(" ", "-")
    errors = r["errors"]
    print(phase + ("" if errors == 0 else f"({errors}-errors)"), round(r["ops_s"]))'
}

# measure LABEL ENDPOINT...: both scenarios, the load split over the endpoints.
measure() {
    local label=$1 n i benches
    shift
    n=$#
    for scenario in "small --count $((count / n))" "put --size 1MiB --count $((count / 8 / n))"; do
        i=0
        benches=()
        for endpoint in "$@"; do
            # shellcheck disable=SC2086
            rate "$endpoint" $((concurrency / n)) $scenario >"$work/rate.$i" &
            benches+=("$!")
            i=$((i + 1))
        done
        wait "${benches[@]}"
        paste -d' ' "$work"/rate.* | awk -v label="$label" '{ s = 0; for (f = 2; f <= NF; f += 2) s += $f; printf "%-34s %-12s %8.0f ops/s\n", label, $1, s }'
        rm -f "$work"/rate.*
    done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $count small objects, $concurrency in flight"
serve redb --data "$work/redb"
measure "redb, one server" "$ENDPOINT"
kill "${pids[0]}"

"$bin" migrate --meta "$TESSERA_TEST_PG" >/dev/null
serve g1 --meta "$TESSERA_TEST_PG" --data "$work/shared" --gateway-id g1
g1=$ENDPOINT
measure "PostgreSQL, one gateway" "$g1"
serve g2 --meta "$TESSERA_TEST_PG" --data "$work/shared" --gateway-id g2
measure "PostgreSQL, two gateways" "$g1" "$ENDPOINT"
