#!/usr/bin/env bash
# ACLs, bucket policies and anonymous access with real clients. Two users, alice and
# bob, are made with `tessera user add --json` (through the running server's admin
# API); then boto3 (root, alice, bob and an UNSIGNED client, plus plain urllib GETs)
# runs py/acl_boto3_scenario.py: canned ACLs, grant headers, AccessControlPolicy
# documents, Get/Put Bucket and Object ACL, per-version ACLs, public-read-write,
# bucket policies (Allow, Deny, MalformedPolicy, NoSuchBucketPolicy) and what bob may
# not do with alice's data. Then the same basics with aws-cli v2 (/usr/bin/aws):
# `s3 cp --acl public-read` and an anonymous `s3 cp --no-sign-request`,
# `s3api put-bucket-acl --grant-read id=…`, `get-object-acl`, `put-object-acl`,
# `put-bucket-policy` / `get-bucket-policy`.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

AWS_BIN="${AWSCLI_V2:-/usr/bin/aws}"
CLI_BUCKET=acl-cli
EMPTY_JSON='{}'

scenario_begin acl-boto3
if [[ -n "${S3_COMPAT_ENDPOINT:-}" ]]; then
    log "external endpoint $ENDPOINT: its users cannot be made with 'tessera user add', so this scenario checks nothing"
    scenario_end
fi

# tessera_user NAME EMAIL: `tessera user add NAME --json --email EMAIL` on the running
# server's data folder (the CLI finds the server through DATA/server-info and signs
# its admin request with the root key). Prints the JSON with "email" added.
tessera_user() {
    local json
    json="$(TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" TESSERA_SECRET_KEY="$TEST_SECRET_KEY" \
        "$TESSERA_BIN" user add "$1" --data "$WORK/data" --json --email "$2")" || return 1
    jq -c --arg email "$2" '. + {email: $email}' <<<"$json"
}

step "make the users alice and bob: tessera user add NAME --data DIR --json --email E (server running)"
ALICE_JSON="" BOB_JSON=""
run_ok "tessera user add alice --json --email alice@example.com" tessera_user alice alice@example.com &&
    ALICE_JSON="$OUT"
run_ok "tessera user add bob --json --email bob@example.com" tessera_user bob bob@example.com && BOB_JSON="$OUT"
for who in alice bob; do
    json=$ALICE_JSON
    [[ $who == bob ]] && json=$BOB_JSON
    fields="$(jq -r '[(.access_key_id | length > 0), (.secret_access_key | length > 0),
        (.canonical_id | test("^[0-9a-f]{64}$"))] | map(tostring) | join(" ")' <<<"${json:-$EMPTY_JSON}" 2>&1)"
    assert_eq "$who: the JSON has access_key_id, secret_access_key and a 64-hex canonical_id" "$fields" \
        "true true true"
done
ALICE_ID="$(jq -r '.canonical_id // ""' <<<"${ALICE_JSON:-$EMPTY_JSON}")"
BOB_ID="$(jq -r '.canonical_id // ""' <<<"${BOB_JSON:-$EMPTY_JSON}")"
if [[ -n $ALICE_ID && $ALICE_ID != "$BOB_ID" ]]; then
    pass "alice and bob have distinct canonical ids"
else
    fail "alice and bob have distinct canonical ids" "alice: '$ALICE_ID'" "bob: '$BOB_ID'"
fi
if run_ok "tessera user list --json (through the running server)" \
    env TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" TESSERA_SECRET_KEY="$TEST_SECRET_KEY" \
    "$TESSERA_BIN" user list --data "$WORK/data" --json; then
    assert_eq "tessera user list: alice and bob with their canonical ids and e-mails" \
        "$(jq -r '[.[] | "\(.name) \(.canonical_id) \(.email)"] | sort | join("|")' <<<"$OUT")" \
        "alice $ALICE_ID alice@example.com|bob $BOB_ID bob@example.com"
fi
if [[ -z $ALICE_JSON || -z $BOB_JSON ]]; then
    fail "both users exist (nothing else can be checked without them)"
    scenario_end
fi
jq -n --argjson a "$ALICE_JSON" --argjson b "$BOB_JSON" '{alice: $a, bob: $b}' >"$WORK/users.json"
export ACL_USERS_FILE="$WORK/users.json"

step "boto3: py/acl_boto3_scenario.py (root, alice, bob, anonymous and urllib)"
run_program "acl-boto3 scenario" python3 "$S3T_DIR/py/acl_boto3_scenario.py"

# ---------------------------------------------------------------------- aws-cli v2
# as_user KEYS_JSON CMD...: run CMD with that user's access key in the environment.
as_user() {
    local json="$1"
    shift
    AWS_ACCESS_KEY_ID="$(jq -r .access_key_id <<<"$json")" \
        AWS_SECRET_ACCESS_KEY="$(jq -r .secret_access_key <<<"$json")" "$@"
}
cli() { "$AWS_BIN" --endpoint-url "$ENDPOINT" --output json "$@"; }
alice() { as_user "$ALICE_JSON" cli "$@"; }
bob() { as_user "$BOB_JSON" cli "$@"; }
anon() { cli --no-sign-request "$@"; }
jqo() {
    local filter="$1"
    shift
    jq -r "$@" "$filter" <<<"${OUT:-$EMPTY_JSON}"
}
# grants: the last ACL answer's grants, sorted, '|'-joined: "TYPE ID-OR-URI PERMISSION".
grants() { jqo '[.Grants // [] | .[] | "\(.Grantee.Type) \(.Grantee.ID // .Grantee.URI) \(.Permission)"] | sort | join("|")'; }
sorted_grants() { printf '%s\n' "$@" | LC_ALL=C sort | paste -sd '|' -; }
ALL_USERS=http://acs.amazonaws.com/groups/global/AllUsers

step "aws-cli v2 ($AWS_BIN)"
run_ok "aws --version" "$AWS_BIN" --version
assert_contains "it is aws-cli v2" "$OUT$ERR" "aws-cli/2."
mkdir -p "$WORK/dl"
head -c 200000 /dev/urandom >"$WORK/pub.bin"
head -c 3000 /dev/urandom >"$WORK/priv.bin"

step "aws s3 cp --acl public-read; anonymous aws s3 cp --no-sign-request"
run_ok "alice: s3api create-bucket $CLI_BUCKET" alice s3api create-bucket --bucket "$CLI_BUCKET"
run_ok "alice: s3 cp pub.bin --acl public-read" alice s3 cp "$WORK/pub.bin" "s3://$CLI_BUCKET/pub.bin" \
    --acl public-read --no-progress
run_ok "alice: s3 cp priv.bin (private)" alice s3 cp "$WORK/priv.bin" "s3://$CLI_BUCKET/priv.bin" --no-progress
run_ok "anonymous: s3 cp s3://$CLI_BUCKET/pub.bin --no-sign-request" \
    anon s3 cp "s3://$CLI_BUCKET/pub.bin" "$WORK/dl/pub.bin" --no-progress &&
    assert_same_file "anonymous download of pub.bin" "$WORK/pub.bin" "$WORK/dl/pub.bin"
run_err "anonymous: s3 cp s3://$CLI_BUCKET/priv.bin --no-sign-request fails with 403" "403" \
    anon s3 cp "s3://$CLI_BUCKET/priv.bin" "$WORK/dl/priv.bin" --no-progress
run_err "anonymous: s3api get-object priv.bin --no-sign-request: AccessDenied" "AccessDenied" \
    anon s3api get-object --bucket "$CLI_BUCKET" --key priv.bin "$WORK/dl/priv2.bin"
run_err "anonymous: s3api list-objects-v2 --no-sign-request (private bucket): AccessDenied" "AccessDenied" \
    anon s3api list-objects-v2 --bucket "$CLI_BUCKET"

step "s3api get-object-acl / get-bucket-acl / put-bucket-acl --grant-read id=<bob>"
if run_ok "alice: s3api get-object-acl pub.bin" alice s3api get-object-acl --bucket "$CLI_BUCKET" --key pub.bin; then
    assert_eq "get-object-acl pub.bin: Owner.ID is alice's" "$(jqo '.Owner.ID // ""')" "$ALICE_ID"
    assert_eq "get-object-acl pub.bin: Owner.DisplayName" "$(jqo '.Owner.DisplayName // ""')" alice
    assert_eq "get-object-acl pub.bin: alice FULL_CONTROL and AllUsers READ" "$(grants)" \
        "$(sorted_grants "CanonicalUser $ALICE_ID FULL_CONTROL" "Group $ALL_USERS READ")"
fi
run_err "bob: s3api list-objects-v2 $CLI_BUCKET: AccessDenied" "AccessDenied" \
    bob s3api list-objects-v2 --bucket "$CLI_BUCKET"
run_ok "alice: s3api put-bucket-acl --grant-read id=<bob>" \
    alice s3api put-bucket-acl --bucket "$CLI_BUCKET" --grant-read "id=$BOB_ID"
if run_ok "alice: s3api get-bucket-acl" alice s3api get-bucket-acl --bucket "$CLI_BUCKET"; then
    assert_eq "get-bucket-acl: Owner.ID is alice's" "$(jqo '.Owner.ID // ""')" "$ALICE_ID"
    assert_eq "get-bucket-acl: bob READ (the grant header replaced the list)" "$(grants)" "CanonicalUser $BOB_ID READ"
    assert_eq "get-bucket-acl: bob's DisplayName" \
        "$(jqo '[.Grants[] | select(.Grantee.ID == $id) | .Grantee.DisplayName] | join(",")' --arg id "$BOB_ID")" bob
fi
if run_ok "bob: s3api list-objects-v2 $CLI_BUCKET (READ)" bob s3api list-objects-v2 --bucket "$CLI_BUCKET"; then
    assert_eq "bob: the keys" "$(jqo '[.Contents // [] | .[].Key] | join("|")')" "priv.bin|pub.bin"
fi
run_err "bob: s3api get-object priv.bin (bucket READ is not object READ): AccessDenied" "AccessDenied" \
    bob s3api get-object --bucket "$CLI_BUCKET" --key priv.bin "$WORK/dl/bob.bin"

step "s3api put-object-acl --acl public-read; bob without WRITE_ACP"
run_err "bob: s3api put-object-acl priv.bin --acl public-read: AccessDenied" "AccessDenied" \
    bob s3api put-object-acl --bucket "$CLI_BUCKET" --key priv.bin --acl public-read
run_ok "alice: s3api put-object-acl priv.bin --acl public-read" \
    alice s3api put-object-acl --bucket "$CLI_BUCKET" --key priv.bin --acl public-read
run_ok "anonymous: s3 cp priv.bin --no-sign-request (public-read now)" \
    anon s3 cp "s3://$CLI_BUCKET/priv.bin" "$WORK/dl/priv.bin" --no-progress &&
    assert_same_file "anonymous download of priv.bin" "$WORK/priv.bin" "$WORK/dl/priv.bin"
if run_ok "alice: s3api get-object-acl priv.bin" alice s3api get-object-acl --bucket "$CLI_BUCKET" --key priv.bin; then
    assert_eq "get-object-acl priv.bin: alice FULL_CONTROL and AllUsers READ" "$(grants)" \
        "$(sorted_grants "CanonicalUser $ALICE_ID FULL_CONTROL" "Group $ALL_USERS READ")"
fi

step "s3api put-bucket-policy (Principal *, s3:GetObject on $CLI_BUCKET/public/*) / get / delete"
run_ok "alice: s3 cp public/p.bin (private object)" alice s3 cp "$WORK/pub.bin" "s3://$CLI_BUCKET/public/p.bin" \
    --no-progress
run_ok "alice: s3 cp private/p.bin (private object)" alice s3 cp "$WORK/pub.bin" "s3://$CLI_BUCKET/private/p.bin" \
    --no-progress
cat >"$WORK/policy.json" <<JSON
{"Version": "2012-10-17", "Statement": [{"Sid": "PublicPrefix", "Effect": "Allow", "Principal": "*",
 "Action": "s3:GetObject", "Resource": "arn:aws:s3:::$CLI_BUCKET/public/*"}]}
JSON
run_ok "alice: s3api put-bucket-policy --policy file://policy.json" \
    alice s3api put-bucket-policy --bucket "$CLI_BUCKET" --policy "file://$WORK/policy.json"
if run_ok "alice: s3api get-bucket-policy" alice s3api get-bucket-policy --bucket "$CLI_BUCKET"; then
    assert_eq "get-bucket-policy: the same document (jq -S)" "$(jqo '.Policy // "null" | fromjson' -S -c)" \
        "$(jq -S -c . "$WORK/policy.json")"
fi
run_ok "anonymous: s3 cp public/p.bin --no-sign-request (the policy)" \
    anon s3 cp "s3://$CLI_BUCKET/public/p.bin" "$WORK/dl/p.bin" --no-progress &&
    assert_same_file "anonymous download of public/p.bin" "$WORK/pub.bin" "$WORK/dl/p.bin"
assert_eq "curl GET /$CLI_BUCKET/public/p.bin: HTTP 200" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/$CLI_BUCKET/public/p.bin")" 200
assert_eq "curl GET /$CLI_BUCKET/private/p.bin: HTTP 403" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/$CLI_BUCKET/private/p.bin")" 403
printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::%s/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}' \
    "$CLI_BUCKET" >"$WORK/policy-condition.json"
run_err "alice: put-bucket-policy with a Condition: MalformedPolicy" "MalformedPolicy" \
    alice s3api put-bucket-policy --bucket "$CLI_BUCKET" --policy "file://$WORK/policy-condition.json"
run_err "bob: s3api put-bucket-policy: AccessDenied" "AccessDenied" \
    bob s3api put-bucket-policy --bucket "$CLI_BUCKET" --policy "file://$WORK/policy.json"
run_ok "alice: s3api delete-bucket-policy" alice s3api delete-bucket-policy --bucket "$CLI_BUCKET"
run_err "alice: s3api get-bucket-policy after delete: NoSuchBucketPolicy" "NoSuchBucketPolicy" \
    alice s3api get-bucket-policy --bucket "$CLI_BUCKET"
run_err "anonymous: s3 cp public/p.bin --no-sign-request after delete-bucket-policy fails with 403" "403" \
    anon s3 cp "s3://$CLI_BUCKET/public/p.bin" "$WORK/dl/p2.bin" --no-progress

step "cleanup: aws s3 rb --force (alice)"
run_err "bob: s3 rb s3://$CLI_BUCKET --force: AccessDenied" "AccessDenied" \
    bob s3 rb "s3://$CLI_BUCKET" --force
if run_ok "alice: s3api list-objects-v2 after bob's rb --force" alice s3api list-objects-v2 --bucket "$CLI_BUCKET"; then
    assert_eq "bob's rb --force deleted nothing" "$(jqo '[.Contents // [] | .[].Key] | join("|")')" \
        "priv.bin|private/p.bin|pub.bin|public/p.bin"
fi
run_ok "alice: s3 rb s3://$CLI_BUCKET --force" alice s3 rb "s3://$CLI_BUCKET" --force
run_err "alice: s3api head-bucket after rb: 404" "404" alice s3api head-bucket --bucket "$CLI_BUCKET"

scenario_end
