#!/usr/bin/env bash
# `tessera cp` against `aws s3 cp` and `rclone copy`, each with its default
# settings, on one fresh release server in one run: upload and download of
# one 1 GiB file (random bytes), rounds alternated between the tools, the
# median of the rounds printed with each tool's peak RSS. Every download is
# compared (SHA-1) with the source. See docs/performance.md.
#
#   scripts/bench-cp.sh                    # 3 rounds of 1 GiB
#   BENCH_CP_MIB=256 BENCH_CP_ROUNDS=1 ... # smaller, quicker
#   BENCH_NO_BUILD=1 ...                   # use the existing release binary
#
# Instant upload and deduplication would make repeated uploads of one file
# free for Tessera's client: the server runs with background hashing off and
# every uploaded object is deleted before the next upload, so each upload
# sends every byte (the script checks `sent` in tessera cp's summary).
set -euo pipefail
cd "$(dirname "$0")/.."

mib=${BENCH_CP_MIB:-1024}
rounds=${BENCH_CP_ROUNDS:-3}
[[ ${BENCH_NO_BUILD:-} == 1 ]] || cargo build --release --quiet
# aws-cli v2 (Debian's package) when there, as most users have it; else any aws.
aws=/usr/bin/aws
[[ -x $aws ]] || aws=$(command -v aws) || { echo "aws-cli is not installed (apt-get install awscli)" >&2; exit 1; }
command -v rclone >/dev/null || { echo "rclone is not installed (apt-get install rclone)" >&2; exit 1; }
aws() { "$aws" --endpoint-url "$endpoint" "$@"; }

work=$(mktemp -d "${BENCH_DIR:-$PWD/target}/bench-cp.XXXXXX")
bin=$work/tessera
cp target/release/tessera "$bin"
export AWS_ACCESS_KEY_ID=BENCH$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
export AWS_SECRET_ACCESS_KEY=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
# Go clients (rclone) refuse custom CA variables against plain HTTP.
unset AWS_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE CURL_CA_BUNDLE
TESSERA_ACCESS_KEY=$AWS_ACCESS_KEY_ID TESSERA_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
    "$bin" serve --listen 127.0.0.1:0 --data "$work/data" --hash-after-idle 0s >"$work/serve.out" 2>"$work/serve.log" &
server=$!
stop() {
    kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 100); do
    endpoint=$(sed -n 's/.*listening on \(http:[0-9.:/]*\).*/\1/p' "$work/serve.out")
    [[ -n $endpoint ]] && break
    sleep 0.1
done
[[ -n $endpoint ]] || { cat "$work/serve.log"; exit 1; }
export AWS_ENDPOINT_URL=$endpoint XDG_STATE_HOME=$work/state
export RCLONE_CONFIG_T_TYPE=s3 RCLONE_CONFIG_T_PROVIDER=Other RCLONE_CONFIG_T_ENV_AUTH=false \
    RCLONE_CONFIG_T_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_T_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    RCLONE_CONFIG_T_ENDPOINT=$endpoint RCLONE_CONFIG_T_REGION=us-east-1 RCLONE_CONFIG_T_FORCE_PATH_STYLE=true \
    RCLONE_CONFIG=$work/rclone.conf
: >"$work/rclone.conf"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "$("$bin" --version), $(aws --version 2>&1 | cut -d' ' -f1), $(rclone version | head -n1)"
echo "file: $mib MiB of random bytes, $rounds rounds, defaults of each tool"
# Two files: the one downloaded must not be the one uploaded, or the
# uploads of Tessera's client would be instant (the object holds it).
src=$work/src.bin dl=$work/dl.bin
head -c $((mib << 20)) /dev/urandom >"$src"
head -c $((mib << 20)) /dev/urandom >"$dl"
want=$(sha1sum <"$dl" | cut -d' ' -f1)
aws s3 mb s3://bench >/dev/null
aws s3 cp --quiet "$dl" s3://bench/download-me
rm "$dl"

# timed NAME CMD...: runs CMD under GNU time; appends "seconds peak_kib" to $work/NAME.
timed() {
    local name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || {
        echo "$name failed:" >&2
        cat "$work/out" "$work/err" >&2
        exit 1
    }
    cat "$work/time" >>"$work/$name"
}
check() { # check FILE: the download equals the object's source
    [[ $(sha1sum <"$1" | cut -d' ' -f1) == "$want" ]] || { echo "$1 differs from the source" >&2; exit 1; }
    rm -f "$1"
}

up() { # up TOOL: upload the source with TOOL, then delete the object
    case $1 in
    tessera)
        timed up-tessera "$bin" cp "$src" s3://bench/up
        grep -q "sent=$((mib << 20)) " "$work/out" ||
            { echo "tessera cp did not send every byte: $(cat "$work/out")" >&2; exit 1; }
        ;;
    aws) timed up-aws aws s3 cp --quiet "$src" s3://bench/up ;;
    rclone) timed up-rclone rclone copyto "$src" t:bench/up ;;
    esac
    aws s3 rm --quiet s3://bench/up
}
down() { # down TOOL: download the object with TOOL and check it
    case $1 in
    tessera) timed down-tessera "$bin" cp s3://bench/download-me "$work/got" ;;
    aws) timed down-aws aws s3 cp --quiet s3://bench/download-me "$work/got" ;;
    rclone) timed down-rclone rclone copyto t:bench/download-me "$work/got" ;;
    esac
    check "$work/got"
}

# Each round starts with another tool, so none always runs first.
tools=(tessera aws rclone)
for round in $(seq "$rounds"); do
    order=("${tools[@]:$(((round - 1) % 3))}" "${tools[@]:0:$(((round - 1) % 3))}")
    echo "round $round: ${order[*]}"
    for tool in "${order[@]}"; do up "$tool"; done
    sync
    for tool in "${order[@]}"; do down "$tool"; done
done

# median NAME: the median seconds and the peak RSS (MiB) of NAME's rounds.
median() {
    sort -n "$work/$1" | awk -v mib="$mib" '{ s[NR] = $1; m = ($2 > m ? $2 : m) }
        END { t = s[int((NR + 1) / 2)]; printf "%7.2f s %8.0f MiB/s %6.0f MiB", t, mib / t, m / 1024 }'
}
printf '\n%-10s %-8s %9s %14s %10s %s\n' direction client median rate "peak RSS" "vs tessera cp"
for dir in up down; do
    base=$(sort -n "$work/$dir-tessera" | awk '{ s[NR] = $1 } END { print s[int((NR + 1) / 2)] }')
    for tool in tessera aws rclone; do
        t=$(sort -n "$work/$dir-$tool" | awk '{ s[NR] = $1 } END { print s[int((NR + 1) / 2)] }')
        printf '%-10s %-8s %s %6.2fx\n' "$dir" "$tool" "$(median "$dir-$tool")" "$(echo "$t / $base" | bc -l)"
    done
done
