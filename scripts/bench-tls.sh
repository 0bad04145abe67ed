#!/usr/bin/env bash
# What TLS costs large transfers (issue 15, docs/performance.md "TLS"):
# builds release, starts two servers from the same binary on 127.0.0.1, one
# plain and one with --tls-cert (a P-256 certificate from a CA made here with
# openssl), and runs `tessera bench put` then `get` of one 1 GiB object on
# each, alternating plain and TLS (the order flips every round), for
# BENCH_ROUNDS rounds (default 3). Prints every run, then the median MiB/s,
# server CPU-seconds per GiB and the TLS/plain ratio, and the cipher suites
# the TLS server negotiated (its debug log).
#
#   scripts/bench-tls.sh
#   BENCH_ROUNDS=5 scripts/bench-tls.sh
#   BENCH_NO_BUILD=1 scripts/bench-tls.sh   # use the existing target/release/tessera
#   BENCH_DIR=/data scripts/bench-tls.sh    # data folders elsewhere (default: target/)
set -euo pipefail
cd "$(dirname "$0")/.."

[[ ${BENCH_NO_BUILD:-} == 1 ]] || cargo build --release --quiet
work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-tls.XXXXXX")
# A private copy: a concurrent `cargo build` must not swap the binary mid-run.
bin=$work/tessera
cp target/release/tessera "$bin"
TESSERA_ACCESS_KEY=BENCH$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
TESSERA_SECRET_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
export TESSERA_ACCESS_KEY TESSERA_SECRET_KEY
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap stop EXIT

# The bench's client trusts AWS_CA_BUNDLE, as aws-cli does.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 1 -subj "/CN=bench CA" 2>/dev/null
openssl req "${ec[@]}" -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 1 \
    -extfile "$work/ext" -out "$work/server.pem" 2>/dev/null
export AWS_CA_BUNDLE=$work/ca.pem

# start NAME [serve flags...]: a server whose endpoint and pid land in
# $work/NAME.endpoint and $work/NAME.pid.
start() {
    local name=$1 endpoint=
    shift
    "$bin" serve --listen 127.0.0.1:0 --data "$work/$name" "$@" >"$work/$name.out" 2>"$work/$name.log" &
    pids+=($!)
    echo $! >"$work/$name.pid"
    for _ in $(seq 100); do
        endpoint=$(sed -n 's/.*listening on \(https\{0,1\}:[0-9.:/]*\).*/\1/p' "$work/$name.out")
        [[ -n $endpoint ]] && break
        sleep 0.1
    done
    [[ -n $endpoint ]] || { cat "$work/$name.log"; exit 1; }
    echo "$endpoint" >"$work/$name.endpoint"
}
start plain
TESSERA_LOG=info,tessera::tls=debug start tls --tls-cert "$work/server.pem" --tls-key "$work/server.key"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(free -g | awk '/Mem:/ {print $2}') GiB RAM; data: $(df -h "$work" | awk 'NR==2 {print $1, $2}')"
echo "server: $("$bin" --version), built from $(git rev-parse --short HEAD)," \
    "plain $(cat "$work/plain.endpoint"), TLS $(cat "$work/tls.endpoint")"

rounds=${BENCH_ROUNDS:-3}
for round in $(seq "$rounds"); do
    order=(plain tls)
    ((round % 2 == 0)) && order=(tls plain)
    for scenario in put get; do
        for mode in "${order[@]}"; do
            out="$work/$scenario-$mode-$round.json"
            "$bin" bench --endpoint "$(cat "$work/$mode.endpoint")" --server-pid "$(cat "$work/$mode.pid")" \
                --disk-dir "$work" --no-limits --json "$scenario" --size 1GiB --count 1 --concurrency 1 >"$out"
            echo "round $round $scenario $mode: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][-1]; print(r["mib_s"], "MiB/s, errors", r["errors"])' "$out")"
        done
    done
done

python3 - "$work" "$rounds" <<'EOF'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def row(scenario, mode, r):
    return json.load(open(f"{work}/{scenario}-{mode}-{r}.json"))["results"][-1]
print()
print("| 1 GiB, 1 in flight | plain MiB/s | TLS MiB/s | TLS / plain (medians) | server CPU s/GiB plain | TLS |")
print("| --- | --- | --- | --- | --- | --- |")
for scenario in ("put", "get"):
    rates = {m: [row(scenario, m, r)["mib_s"] for r in range(1, rounds + 1)] for m in ("plain", "tls")}
    cpu = {m: statistics.median(row(scenario, m, r)["server_cpu_s"] for r in range(1, rounds + 1)) for m in ("plain", "tls")}
    med = {m: statistics.median(v) for m, v in rates.items()}
    fmt = lambda v: f"**{statistics.median(v):.0f}** ({', '.join(f'{x:.0f}' for x in v)})"
    print(f"| {scenario.upper()} | {fmt(rates['plain'])} | {fmt(rates['tls'])} | {med['tls'] / med['plain']:.2f} "
          f"| {cpu['plain']:.2f} | {cpu['tls']:.2f} |")
EOF
echo
echo "negotiated by the TLS server (connections, version, cipher suite):"
grep 'TLS session established' "$work/tls.log" | grep -o 'version=[^ ]* cipher=[^ ]*' | sort | uniq -c
