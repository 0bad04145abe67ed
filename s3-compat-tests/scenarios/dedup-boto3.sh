#!/usr/bin/env bash
# Content stored once (the unique-file table) with real clients, measured with
# `tessera stats --json` on the running server's data folder (the CLI finds the
# server through DATA/server-info and signs its admin request with the root key)
# and with the files under DATA/blobs: boto3 put_object of one 1 MiB body under 3
# keys in 2 buckets; presigned PUTs (urllib) without and with x-amz-checksum-sha256;
# boto3 upload_file of 20 MiB in 8 MiB parts three times (the third with
# ChecksumAlgorithm SHA256); aws-cli v2 `aws s3 cp` of one 5 MiB file to two keys;
# then every copy deleted but one, then that one: back to the baseline, blob files
# unlinked. py/dedup_boto3_scenario.py does it all (aws-cli through subprocess).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin dedup-boto3
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: 'tessera stats' cannot look at its storage, so this scenario checks nothing"
    scenario_end
fi

step "boto3 + aws-cli v2: py/dedup_boto3_scenario.py (tessera stats --data $WORK/data --json)"
run_program "dedup-boto3 scenario" \
    env TESSERA_BIN="$TESSERA_BIN" DEDUP_DATA="$WORK/data" AWS_BIN="${AWSCLI_V2:-/usr/bin/aws}" \
    TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" TESSERA_SECRET_KEY="$TEST_SECRET_KEY" \
    python3 "$S3T_DIR/py/dedup_boto3_scenario.py"
scenario_end
