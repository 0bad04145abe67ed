#!/usr/bin/env bash
# Two gateways over PostgreSQL (issue 17, docs/scale-out.md): a throw-away
# cluster (scripts/pg-test-cluster.sh), `tessera migrate`, then two `tessera
# serve --meta` processes (gateway ids g1 and g2) on one shared data folder.
# Real clients spread across them: aws-cli v2 `s3 cp` uploads 20 MiB in 8 MiB
# parts through g1 and downloads it through g2; boto3 upload_file sends 12 MiB in
# 5 MiB parts through g2, download_file reads it through g1; rclone copies a
# folder of files through g1 and `rclone check` compares it through g2; a key
# deleted with aws-cli through g2 is gone through g1 (rclone lsf). Every
# download's SHA-256 equals the source's. Then the database is restarted as
# a crash would under a load of PUTs through both gateways: nothing
# acknowledged is lost, refusals are S3 errors, writes resume. The default redb server of
# scenario_begin is stopped first: it is not used.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin gateways-postgres
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: this scenario runs its own gateways, so it checks nothing"
    scenario_end
fi
stop_server

GATEWAY_PIDS=()
_kill_gateways() {
    local pid
    for pid in "${GATEWAY_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap '_kill_gateways; _scenario_cleanup' EXIT
# Its EXIT trap stops the cluster, then runs the one above.
# shellcheck source=../../scripts/pg-test-cluster.sh
if ! source "$REPO_ROOT/scripts/pg-test-cluster.sh" >"$WORK/pg.log" 2>&1; then
    fail "a PostgreSQL test cluster starts" "$(tail -n 20 "$WORK/pg.log")"
    scenario_end
fi
META="$TESSERA_TEST_PG"
SHARED="$WORK/shared"

step "tessera migrate --meta (the cluster of scripts/pg-test-cluster.sh)"
run_ok "tessera migrate" "$TESSERA_BIN" migrate --meta "$META"
assert_contains "the schema is created" "$OUT" "version:   none -> 1"

# start_gateway ID: `tessera serve --meta` on $SHARED; sets GW_ENDPOINT.
start_gateway() {
    local id="$1" out="$WORK/$1.out" pid addr="" deadline=$((SECONDS + 20))
    TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" TESSERA_SECRET_KEY="$TEST_SECRET_KEY" \
        "$TESSERA_BIN" serve --meta "$META" --gateway-id "$id" --data "$SHARED" --listen 127.0.0.1:0 \
        --console off --region "$TEST_REGION" >"$out" 2>>"$WORK/server.log" &
    pid=$!
    GATEWAY_PIDS+=("$pid")
    while ((SECONDS < deadline)) && [[ -z $addr ]] && kill -0 "$pid" 2>/dev/null; do
        sleep 0.1
        addr=$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$out" | head -n 1)
    done
    if [[ -z $addr ]]; then
        fail "gateway $id listens" "$(tail -n 20 "$WORK/server.log")"
        scenario_end
    fi
    GW_ENDPOINT="http://$addr"
    pass "gateway $id listening on $GW_ENDPOINT (pid $pid)"
}
start_gateway g1
G1="$GW_ENDPOINT"
start_gateway g2
G2="$GW_ENDPOINT"

aws2() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$1" "${@:2}"; }
export AWS_PAGER=""
sha() { sha256sum "$1" | cut -d' ' -f1; }

step "aws-cli v2: 20 MiB up through g1 (multipart), down through g2"
make_random_file "$WORK/big.bin" 20
run_ok "aws s3 mb through g1" aws2 "$G1" s3 mb "s3://$TEST_BUCKET"
run_ok "aws s3 cp up through g1" aws2 "$G1" s3 cp "$WORK/big.bin" "s3://$TEST_BUCKET/aws/big.bin"
run_ok "aws s3 cp down through g2" aws2 "$G2" s3 cp "s3://$TEST_BUCKET/aws/big.bin" "$WORK/big.g2"
assert_eq "SHA-256 through g2 equals the source's" "$(sha "$WORK/big.g2")" "$(sha "$WORK/big.bin")"
run_ok "head-object through g2" aws2 "$G2" s3api head-object --bucket "$TEST_BUCKET" --key aws/big.bin
assert_contains "the ETag is a 3-part multipart ETag" "$OUT" '-3\"'

step "boto3: 12 MiB up through g2 in 5 MiB parts, down through g1"
make_random_file "$WORK/mid.bin" 12
run_ok "boto3 upload_file through g2, download_file through g1" python3 - "$G2" "$G1" "$TEST_BUCKET" \
    "$WORK/mid.bin" "$WORK/mid.g1" <<'PY'
import sys
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

up, down, bucket, src, dst = sys.argv[1:]
cfg = Config(s3={"addressing_style": "path"})
config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
boto3.client("s3", endpoint_url=up, config=cfg).upload_file(src, bucket, "boto/mid.bin", Config=config)
boto3.client("s3", endpoint_url=down, config=cfg).download_file(bucket, "boto/mid.bin", dst)
PY
assert_eq "SHA-256 through g1 equals the source's" "$(sha "$WORK/mid.g1")" "$(sha "$WORK/mid.bin")"

step "rclone: a folder up through g1, checked through g2"
rclone_env
export RCLONE_CONFIG_G1_TYPE=s3 RCLONE_CONFIG_G1_PROVIDER=Other RCLONE_CONFIG_G1_ENV_AUTH=false
export RCLONE_CONFIG_G1_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_G1_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
export RCLONE_CONFIG_G1_ENDPOINT="$G1" RCLONE_CONFIG_G1_REGION="$TEST_REGION" RCLONE_CONFIG_G1_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_T_ENDPOINT="$G2"
rc() { without_ca_vars rclone --config "$WORK/rclone.conf" --low-level-retries 1 --retries 1 "$@"; }
run_ok "rclone copy through g1" rc copy "$FILES_DIR" "g1:$TEST_BUCKET/rclone"
run_ok "rclone check through g2 (sizes and hashes)" rc check "$FILES_DIR" "t:$TEST_BUCKET/rclone"
run_to_file "rclone cat through g2" "$WORK/top.g2" rc cat "t:$TEST_BUCKET/rclone/top.txt"
assert_eq "rclone reads the bytes written through g1" "$(sha "$WORK/top.g2")" "$(sha "$FILES_DIR/top.txt")"

step "a delete through g2 is seen through g1"
run_ok "aws s3 rm through g2" aws2 "$G2" s3 rm "s3://$TEST_BUCKET/aws/big.bin"
run_ok "rclone lsf through g1" rc lsf -R "g1:$TEST_BUCKET"
assert_eq "aws/big.bin is gone, the rest is there" "$(grep -c 'big.bin' <<<"$OUT")" 0
assert_contains "boto3's object is listed through g1" "$OUT" "boto/mid.bin"

step "database restarts (immediate: a crash) under load through both gateways"
# Eight boto3 writers without client retries PUT 20 KB and 100 KB bodies
# through both gateways for 16 s; the cluster is restarted 2 s in, then
# stopped for 6 s at 6 s (longer than a gateway retries a lost connection,
# 5 s). Every PUT answered 200 must read back through the other gateway with
# its SHA-256; every refusal must be an S3 error (500 or 503 with a code),
# never a connection the gateway dropped; writes must succeed again after.
python3 - "$G1" "$G2" "$TEST_BUCKET" 16 >"$WORK/load.out" 2>&1 <<'PY' &
import collections, hashlib, os, sys, threading, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

g1, g2, bucket, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
cfg = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"},
             connect_timeout=5, read_timeout=60)
clients = [boto3.client("s3", endpoint_url=g, config=cfg) for g in (g1, g2)]
acked, refused, dropped, lock = {}, collections.Counter(), [], threading.Lock()
start, last_ack = time.time(), [0.0]

def writer(t):
    n = 0
    while time.time() - start < seconds:
        n += 1
        key, body = f"load/{t}-{n}", os.urandom(20_000 if n % 2 else 100_000)
        try:
            clients[(t + n) % 2].put_object(Bucket=bucket, Key=key, Body=body)
            with lock:
                acked[key] = ((t + n) % 2, hashlib.sha256(body).hexdigest())
                last_ack[0] = time.time() - start
        except ClientError as e:
            with lock:
                refused[(e.response["ResponseMetadata"].get("HTTPStatusCode"), e.response["Error"].get("Code"))] += 1
        except Exception as e:
            with lock:
                dropped.append(repr(e))

threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
lost = []
for key, (through, digest) in acked.items():
    try:
        body = clients[1 - through].get_object(Bucket=bucket, Key=key)["Body"].read()
        if hashlib.sha256(body).hexdigest() != digest:
            lost.append(key)
    except ClientError:
        lost.append(key)
print(f"acknowledged {len(acked)}, refused {dict(refused)}, dropped {len(dropped)} {dropped[:3]}, "
      f"lost {len(lost)} {lost[:5]}, last acknowledged at {last_ack[0]:.1f} s of {seconds:.0f}")
bad = [k for k in refused if k[0] not in (500, 503) or not k[1]]
sys.exit(1 if lost or dropped or bad or last_ack[0] < seconds - 2 else 0)
PY
load=$!
sleep 2
restarted=$SECONDS
if pg_test_cluster_restart; then
    pass "the cluster restarted (immediate) in $((SECONDS - restarted)) s"
else
    fail "the cluster restarts" "$(tail -n 20 "$TESSERA_TEST_PG_DIR/log" 2>/dev/null)"
fi
sleep $((6 - (SECONDS - restarted) - 2 > 0 ? 6 - (SECONDS - restarted) - 2 : 0))
if pg_test_cluster_restart 6; then
    pass "the cluster was down 6 s and started again"
else
    fail "the cluster starts again after 6 s down" "$(tail -n 20 "$TESSERA_TEST_PG_DIR/log" 2>/dev/null)"
fi
code=0
wait "$load" || code=$?
assert_eq "no acknowledged PUT lost, refusals are S3 errors, writes resume ($(tail -n 1 "$WORK/load.out"))" "$code" 0

step "each gateway stops cleanly"
for pid in "${GATEWAY_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    code=0
    wait "$pid" || code=$?
    assert_eq "gateway pid $pid exits 0 on SIGTERM" "$code" 0
done
GATEWAY_PIDS=()

step "tessera scrub --meta: every byte the database names is on the shared folder, intact"
if report=$("$TESSERA_BIN" scrub --meta "$META" --data "$SHARED" 2>&1); then
    pass "scrub clean: $(echo "$report" | grep '^checked' | head -n 1)"
else
    fail "tessera scrub --meta exits 0 after the restarts" "$report"
fi
scenario_end
