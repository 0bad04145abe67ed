#!/usr/bin/env bash
# Builds release, starts a fresh `tessera serve` on 127.0.0.1:0 with a
# temporary data folder on the repository's disk, runs every scenario of the
# performance table (docs/performance.md) with `tessera bench`, and prints the
# server's peak RSS: each timed phase reports its own (the bench resets the
# server's VmHWM as the phase starts), and the largest is printed at the end.
#
#   scripts/bench.sh                 # everything
#   scripts/bench.sh --json          # extra arguments go to every `tessera bench`
#   BENCH_DIR=/data scripts/bench.sh # data folder and disk test elsewhere
#   BENCH_COMPLETE_PARTS=10000 ...   # Complete over more parts (5 MiB each, copied server-side:
#                                    # 10,000 parts write 50 GiB and take about 3 minutes)
#   BENCH_NO_BUILD=1 ...             # use the existing release binary
#   BENCH_BIN=/path/to/tessera ...   # use that binary (another build, for an A/B run); implies no build
#   BENCH_ONLY='put|multipart' ...   # only the scenarios whose name matches (an extended regex)
#   BENCH_CONCURRENT=32 ...          # also 32 concurrent 1 GiB PUTs, then 32 concurrent 1 GiB GETs
#                                    # (memory under load; writes 32 GiB twice, about 2 minutes)
#   BENCH_GROWTH=1 ...               # also the cost-growth table: PUT and GET of 4 KiB to 256 MiB
#                                    # objects (4 in flight), listing 100,000 keys (about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n ${BENCH_BIN:-} ]]; then
    built="$BENCH_BIN"
elif [[ ${BENCH_NO_BUILD:-} == 1 ]]; then
    built="an existing target/release/tessera"
else
    cargo build --release --quiet
    built="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo ' with uncommitted changes')"
fi
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench.XXXXXX")
# A private copy: a concurrent `cargo build` must not swap the binary mid-run.
bin=$work/tessera
cp "${BENCH_BIN:-target/release/tessera}" "$bin"
TESSERA_ACCESS_KEY=BENCH$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
TESSERA_SECRET_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
export TESSERA_ACCESS_KEY TESSERA_SECRET_KEY

"$bin" serve --listen 127.0.0.1:0 --data "$work/data" >"$work/serve.out" 2>"$work/serve.log" &
server=$!
stop() {
    kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT

for _ in $(seq 100); do
    endpoint=$(sed -n 's/.*listening on \(http:[0-9.:/]*\).*/\1/p' "$work/serve.out")
    [[ -n $endpoint ]] && break
    kill -0 "$server" || { cat "$work/serve.log"; exit 1; }
    sleep 0.1
done
[[ -n $endpoint ]] || { echo "server did not start" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(free -g | awk '/Mem:/ {print $2}') GiB RAM; data: $(df -h "$work" | awk 'NR==2 {print $1, $2}')"
echo "server: $("$bin" --version), built from $built, pid $server, $endpoint"

failed=0
bench() {
    [[ -z ${BENCH_ONLY:-} || $1 =~ ^($BENCH_ONLY)$ ]] || return 0
    echo
    echo "== tessera bench $*"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" bench --endpoint "$endpoint" --disk-dir "$work" --server-pid "$server" "$@" "${extra[@]}" \
        | tee "$work/last.out" || failed=1
    # Each timed phase reports its own peak (the bench resets VmHWM as it starts).
    for mib in $(grep -o 'server peak RSS *[0-9.]*' "$work/last.out" | awk '{print $4}') \
        $(awk '/VmHWM/ {print $2 / 1024}' /proc/$server/status); do
        peak=$(awk -v a="$peak" -v b="$mib" 'BEGIN {print (b > a ? b : a)}')
    done
}
peak=0
extra=("$@")

bench put --size 16MiB --count 64 --concurrency 4
bench put --size 1GiB --count 1 --concurrency 1
bench dedup --size 16MiB --count 64 --concurrency 4
bench get --size 16MiB --count 64 --concurrency 4
bench get --size 1GiB --count 1 --concurrency 1
bench multipart --size 1GiB --part-size 16MiB --concurrency 4
bench range --size 1GiB --range-size 1MiB --concurrency 8 --duration 10s
bench small --size 4KiB --count 10000 --concurrency 16
bench small --size 4KiB --count 10000 --concurrency 16 --versioning
bench list --count 10000
bench list --count 10000 --versions 10
bench delete --size 4KiB --count 10000 --concurrency 16
bench multipart --parts "${BENCH_COMPLETE_PARTS:-1000}" --part-size 5MiB --concurrency 4
if [[ -n ${BENCH_GROWTH:-} ]]; then
    for size_count in 4KiB:10000 64KiB:4096 1MiB:1024 16MiB:64 256MiB:8; do
        bench put --size "${size_count%:*}" --count "${size_count#*:}" --concurrency 4 --no-limits
        bench get --size "${size_count%:*}" --count "${size_count#*:}" --concurrency 4 --no-limits
    done
    bench list --count 100000 --no-limits
fi
if [[ -n ${BENCH_CONCURRENT:-} ]]; then
    bench put --size 1GiB --count "$BENCH_CONCURRENT" --concurrency "$BENCH_CONCURRENT" --no-limits
    bench get --size 1GiB --count "$BENCH_CONCURRENT" --concurrency "$BENCH_CONCURRENT" --no-limits
fi

echo
echo "server peak RSS over the timed phases and the moments between scenarios: $peak MiB"
exit "$failed"
