#!/usr/bin/env bash
# Instant upload (秒传) with real clients: a PutObject or UploadPart that sends
# Expect: 100-continue and declares its content's SHA-256 and size is answered at
# once (x-tessera-instant-upload: true, connection: close), without its body, when
# the requester already holds that content. Every client goes through a byte-counting
# TCP proxy (in py/instant_boto3_scenario.py), so what the server received is
# measured: boto3 put_object (file bodies) and multipart (BytesIO parts, a resumed
# upload) with ChecksumAlgorithm SHA256, aws-cli v2 `aws s3 cp` single and multipart,
# curl --aws-sigv4 and a raw socket. Three users (`tessera user add --json`): alice
# holds the content, bob sends it once (deduplicated) and is instant afterwards,
# carol declares alice's SHA-256 with other bytes (refused, nothing stored); an
# anonymous PUT is never instant; deleting every copy ends it. Storage is checked with
# `tessera stats --json` on the running server's data folder.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin instant-boto3
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: its users cannot be made with 'tessera user add' and it has no instant upload, so this scenario checks nothing"
    scenario_end
fi

step "make the users alice, bob and carol: tessera user add NAME --data DIR --json (server running)"
USERS_JSON='{}'
for who in alice bob carol; do
    if run_ok "tessera user add $who --json" env TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" \
        TESSERA_SECRET_KEY="$TEST_SECRET_KEY" "$TESSERA_BIN" user add "$who" --data "$WORK/data" --json; then
        USERS_JSON="$(jq -c --arg who "$who" --argjson u "$OUT" '. + {($who): $u}' <<<"$USERS_JSON")"
    fi
done
assert_eq "three users, each with an access key and a secret" \
    "$(jq -r '[to_entries[] | select((.value.access_key_id | length > 0) and (.value.secret_access_key | length > 0)) | .key] | join(" ")' <<<"$USERS_JSON")" \
    "alice bob carol"
if [[ $FAILURES -ne 0 ]]; then scenario_end; fi
printf '%s\n' "$USERS_JSON" >"$WORK/users.json"

# instant_py [PHASE]: py/instant_boto3_scenario.py against the running server.
instant_py() {
    env TESSERA_BIN="$TESSERA_BIN" INSTANT_DATA="$WORK/data" INSTANT_USERS_FILE="$WORK/users.json" \
        AWS_BIN="${AWSCLI_V2:-/usr/bin/aws}" \
        TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" TESSERA_SECRET_KEY="$TEST_SECRET_KEY" \
        python3 "$S3T_DIR/py/instant_boto3_scenario.py" "$@"
}

step "across a restart: alice stores a file twice, the server restarts (same folder), her next upload is instant"
run_program "instant-boto3 before the restart" instant_py before
stop_server
restart_server || scenario_end
run_program "instant-boto3 after the restart" instant_py after

step "boto3 + aws-cli v2 + curl + a raw socket, through a byte-counting proxy: py/instant_boto3_scenario.py"
run_program "instant-boto3 scenario" instant_py
scenario_end
