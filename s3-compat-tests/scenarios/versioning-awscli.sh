#!/usr/bin/env bash
# aws-cli v2 (Debian package awscli, /usr/bin/aws): bucket versioning with s3api.
# put/get-bucket-versioning, two versions from put-object, get-object --version-id
# (compared by SHA-256), a delete marker (NoSuchKey, MethodNotAllowed),
# list-object-versions (unpaged, through the CLI paginator and by hand with
# --key-marker/--version-id-marker), removing the marker brings the object back,
# deleting a version for good, and then the cleanup (BucketNotEmpty while only
# versions and markers are left).
# Version ids are opaque: they are compared with the ids the server returned, never
# with a format.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

AWS_BIN="${AWSCLI_V2:-/usr/bin/aws}"
KEY=doc.txt
OTHER=other.txt
EMPTY_JSON='{}'

# cli ARGS...: aws-cli v2 against the endpoint under test, JSON output.
cli() { "$AWS_BIN" --endpoint-url "$ENDPOINT" --output json "$@"; }
# jqo FILTER [jq args...]: FILTER on the last answer ($OUT; an empty answer is {}).
# Missing fields must be given a default with '//': jq prints a missing field as
# "null", the same text as the version id "null".
jqo() {
    local filter="$1"
    shift
    jq -r "$@" "$filter" <<<"${OUT:-$EMPTY_JSON}"
}
# is_real_id ID: a version id minted by the server (non-empty, not "null").
is_real_id() { [[ -n "$1" && "$1" != null ]]; }
# versions_of KEY: "VersionId IsLatest" of KEY's versions in the last answer, newest first, '|'-joined.
versions_of() { jqo '[.Versions // [] | .[] | select(.Key == $k) | "\(.VersionId) \(.IsLatest)"] | join("|")' --arg k "$1"; }
markers_of() { jqo '[.DeleteMarkers // [] | .[] | select(.Key == $k) | "\(.VersionId) \(.IsLatest)"] | join("|")' --arg k "$1"; }
# entries: every version and marker of the last answer, one per line: KIND KEY ID LATEST SIZE.
entries() {
    jqo '(.Versions // [] | .[] | "Version \(.Key) \(.VersionId) \(.IsLatest) \(.Size)"),
         (.DeleteMarkers // [] | .[] | "DeleteMarker \(.Key) \(.VersionId) \(.IsLatest) -")'
}

# put_version LABEL KEY FILE: put-object; sets VID to the VersionId it returned.
put_version() {
    VID=""
    if run_ok "put-object $2 ($1, $(size_of "$3") B)" \
        cli s3api put-object --bucket "$TEST_BUCKET" --key "$2" --body "$3"; then
        assert_eq "$1: ETag is the quoted MD5" "$(jqo '.ETag // ""')" "\"$(md5_of "$3")\""
        VID="$(jqo '.VersionId // ""')"
    fi
    if is_real_id "$VID"; then
        pass "$1: put-object returned a VersionId ($VID)"
    else
        fail "$1: put-object returned a VersionId" "VersionId: '$VID'"
    fi
}

# get_version LABEL ID EXPECTED_FILE: get-object --version-id ID must give EXPECTED_FILE's bytes.
get_version() {
    rm -f "$WORK/dl/got"
    if run_ok "get-object $KEY --version-id <$1>" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key "$KEY" --version-id "$2" "$WORK/dl/got"; then
        assert_same_file "get-object --version-id <$1>: the bytes of $1" "$3" "$WORK/dl/got"
        assert_eq "get-object --version-id <$1>: VersionId" "$(jqo '.VersionId // ""')" "$2"
    fi
}

# get_latest LABEL EXPECTED_FILE EXPECTED_ID: get-object without --version-id.
get_latest() {
    rm -f "$WORK/dl/got"
    if run_ok "get-object $KEY ($1)" cli s3api get-object --bucket "$TEST_BUCKET" --key "$KEY" "$WORK/dl/got"; then
        assert_same_file "get-object $KEY ($1): bytes" "$2" "$WORK/dl/got"
        assert_eq "get-object $KEY ($1): VersionId" "$(jqo '.VersionId // ""')" "$3"
    fi
}

# current_keys: the keys list-objects-v2 shows, '|'-joined (after run_ok).
current_keys() { jqo '[.Contents // [] | .[].Key] | join("|")'; }

scenario_begin versioning-awscli
export AWS_PAGER=""
mkdir -p "$WORK/dl"

step "client: $AWS_BIN"
run_ok "$AWS_BIN --version runs" "$AWS_BIN" --version
log "  version: $OUT$ERR"
assert_contains "it is aws-cli v2" "$OUT$ERR" "aws-cli/2."
"$AWS_BIN" configure set default.s3.addressing_style path

step "bucket versioning: no Status on a fresh bucket, then Enabled"
run_ok "create-bucket $TEST_BUCKET" cli s3api create-bucket --bucket "$TEST_BUCKET"
if run_ok "get-bucket-versioning on a fresh bucket" cli s3api get-bucket-versioning --bucket "$TEST_BUCKET"; then
    assert_eq "fresh bucket: no Status" "$(jqo '.Status // "(absent)"')" "(absent)"
fi
run_ok "put-bucket-versioning Status=Enabled" \
    cli s3api put-bucket-versioning --bucket "$TEST_BUCKET" --versioning-configuration Status=Enabled
if run_ok "get-bucket-versioning" cli s3api get-bucket-versioning --bucket "$TEST_BUCKET"; then
    assert_eq "Status after put-bucket-versioning" "$(jqo '.Status // "(absent)"')" Enabled
fi

step "put-object twice: two versions of $KEY"
F1="$WORK/v1.bin" F2="$WORK/v2.bin" FO="$WORK/other.bin"
head -c 100000 /dev/urandom >"$F1"
head -c 200001 /dev/urandom >"$F2"
head -c 3000 /dev/urandom >"$FO"
put_version "version 1" "$KEY" "$F1"
V1="${VID:-missing-v1}"
put_version "version 2" "$KEY" "$F2"
V2="${VID:-missing-v2}"
if [[ "$V1" != "$V2" ]]; then
    pass "the two put-object answers have distinct VersionIds"
else
    fail "the two put-object answers have distinct VersionIds" "both: $V1"
fi
put_version "other key" "$OTHER" "$FO"
VO="${VID:-missing-vo}"

step "get-object / head-object --version-id: each version's own bytes"
get_version "version 1" "$V1" "$F1"
get_version "version 2" "$V2" "$F2"
get_latest "no --version-id: the latest, version 2" "$F2" "$V2"
if run_ok "head-object $KEY --version-id <version 1>" \
    cli s3api head-object --bucket "$TEST_BUCKET" --key "$KEY" --version-id "$V1"; then
    assert_eq "head-object --version-id <version 1>: ContentLength" "$(jqo '.ContentLength // ""')" "$(size_of "$F1")"
    assert_eq "head-object --version-id <version 1>: ETag" "$(jqo '.ETag // ""')" "\"$(md5_of "$F1")\""
    assert_eq "head-object --version-id <version 1>: VersionId" "$(jqo '.VersionId // ""')" "$V1"
fi

step "delete-object without --version-id: a delete marker"
MARK="missing-marker"
if run_ok "delete-object $KEY" cli s3api delete-object --bucket "$TEST_BUCKET" --key "$KEY"; then
    assert_eq "delete-object: DeleteMarker" "$(jqo '.DeleteMarker // false')" true
    MARK="$(jqo '.VersionId // ""')"
fi
if is_real_id "$MARK" && [[ "$MARK" != "$V1" && "$MARK" != "$V2" && "$MARK" != "$VO" ]]; then
    pass "delete-object: the marker has a new VersionId ($MARK)"
else
    fail "delete-object: the marker has a new VersionId" "VersionId: '$MARK'; versions: $V1 $V2 $VO"
fi
run_err "get-object $KEY (latest is a marker) fails with NoSuchKey" "(NoSuchKey)" \
    cli s3api get-object --bucket "$TEST_BUCKET" --key "$KEY" "$WORK/dl/gone"
run_err "head-object $KEY (latest is a marker): 404" "(404)" \
    cli s3api head-object --bucket "$TEST_BUCKET" --key "$KEY"
run_err "get-object $KEY --version-id <the marker> fails with MethodNotAllowed" "(MethodNotAllowed)" \
    cli s3api get-object --bucket "$TEST_BUCKET" --key "$KEY" --version-id "$MARK" "$WORK/dl/gone"
get_version "version 2, behind the marker" "$V2" "$F2"
if run_ok "list-objects-v2" cli s3api list-objects-v2 --bucket "$TEST_BUCKET"; then
    assert_eq "list-objects-v2 hides $KEY (its latest is a marker)" "$(current_keys)" "$OTHER"
fi

step "list-object-versions: versions, markers, IsLatest, newest first; paged"
: >"$WORK/versions.unpaged"
if run_ok "list-object-versions" cli s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$KEY: 2 versions" "$(jqo '[.Versions // [] | .[] | select(.Key == $k)] | length' --arg k "$KEY")" 2
    assert_eq "$KEY: 1 delete marker" "$(jqo '[.DeleteMarkers // [] | .[] | select(.Key == $k)] | length' --arg k "$KEY")" 1
    assert_eq "$KEY: the marker is the latest" "$(markers_of "$KEY")" "$MARK true"
    assert_eq "$KEY: versions newest first, neither latest" "$(versions_of "$KEY")" "$V2 false|$V1 false"
    assert_eq "$OTHER: one version, the latest" "$(versions_of "$OTHER")" "$VO true"
    assert_eq "$OTHER: no delete marker" "$(markers_of "$OTHER")" ""
    assert_eq "version sizes" "$(jqo '[.Versions // [] | .[] | "\(.VersionId)=\(.Size)"] | join("|")')" \
        "$V2=$(size_of "$F2")|$V1=$(size_of "$F1")|$VO=$(size_of "$FO")"
    entries >"$WORK/versions.unpaged"
    log "  entries:"
    sed 's/^/    /' "$WORK/versions.unpaged"
fi
if run_ok "list-object-versions --page-size 1 (the CLI's paginator: key and version-id markers)" \
    cli s3api list-object-versions --bucket "$TEST_BUCKET" --page-size 1; then
    assert_eq "--page-size 1: the same entries as unpaged" "$(entries | join_lines)" \
        "$(join_lines <"$WORK/versions.unpaged")"
fi
# By hand: one entry a page, following NextKeyMarker / NextVersionIdMarker.
: >"$WORK/versions.byhand"
markers=() pages=0 paging_ok=1
while ((pages < 20)); do
    pages=$((pages + 1))
    if ! run_ok "list-object-versions --max-keys 1 page $pages${markers[*]:+ (${markers[*]})}" \
        cli s3api list-object-versions --bucket "$TEST_BUCKET" --max-keys 1 --no-paginate "${markers[@]}"; then
        paging_ok=0
        break
    fi
    n="$(entries | wc -l)"
    if ((n <= 1)); then
        pass "page $pages: $n entry (--max-keys 1)"
    else
        fail "page $pages: at most one entry (--max-keys 1)" "entries: $(entries | join_lines)"
    fi
    entries >>"$WORK/versions.byhand"
    [[ "$(jqo '.IsTruncated // false')" == true ]] || break
    nk="$(jqo '.NextKeyMarker // ""')" nv="$(jqo '.NextVersionIdMarker // ""')"
    if [[ -z "$nk" || -z "$nv" ]]; then
        fail "page $pages is truncated and gives NextKeyMarker and NextVersionIdMarker" "answer: $OUT"
        paging_ok=0
        break
    fi
    markers=(--key-marker "$nk" --version-id-marker "$nv")
done
# One entry a page keeps the order of the XML, which the CLI's merged lists lose:
# keys ascending, and within a key the newest first (here the marker).
if [[ $paging_ok == 1 ]]; then
    assert_eq "by hand, one entry a page: every version and marker, in S3's order" \
        "$(join_lines <"$WORK/versions.byhand")" \
        "DeleteMarker $KEY $MARK true -|Version $KEY $V2 false $(size_of "$F2")|Version $KEY $V1 false $(size_of "$F1")|Version $OTHER $VO true $(size_of "$FO")"
fi

step "delete-object --version-id <the marker>: the object is back"
if run_ok "delete-object $KEY --version-id <the marker>" \
    cli s3api delete-object --bucket "$TEST_BUCKET" --key "$KEY" --version-id "$MARK"; then
    assert_eq "removing the marker: DeleteMarker" "$(jqo '.DeleteMarker // false')" true
    assert_eq "removing the marker: VersionId is the marker's" "$(jqo '.VersionId // ""')" "$MARK"
fi
get_latest "after removing the marker: version 2 again" "$F2" "$V2"
if run_ok "list-object-versions" cli s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$KEY: no delete marker left" "$(markers_of "$KEY")" ""
    assert_eq "$KEY: version 2 is the latest again" "$(versions_of "$KEY")" "$V2 true|$V1 false"
fi
if run_ok "list-objects-v2" cli s3api list-objects-v2 --bucket "$TEST_BUCKET"; then
    assert_eq "list-objects-v2 shows $KEY again" "$(current_keys)" "$KEY|$OTHER"
fi

step "delete-object --version-id <version 1>: that version is gone for good"
if run_ok "delete-object $KEY --version-id <version 1>" \
    cli s3api delete-object --bucket "$TEST_BUCKET" --key "$KEY" --version-id "$V1"; then
    assert_eq "deleting a version: VersionId echoed" "$(jqo '.VersionId // ""')" "$V1"
    assert_eq "deleting a version: it was no delete marker" "$(jqo '.DeleteMarker // false')" false
fi
run_err "get-object --version-id <version 1> fails with NoSuchVersion" "(NoSuchVersion)" \
    cli s3api get-object --bucket "$TEST_BUCKET" --key "$KEY" --version-id "$V1" "$WORK/dl/gone"
get_latest "still version 2" "$F2" "$V2"
if run_ok "list-object-versions" cli s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$KEY: only version 2 is left" "$(versions_of "$KEY")" "$V2 true"
fi

step "put-bucket-versioning Suspended"
run_ok "put-bucket-versioning Status=Suspended" \
    cli s3api put-bucket-versioning --bucket "$TEST_BUCKET" --versioning-configuration Status=Suspended
if run_ok "get-bucket-versioning" cli s3api get-bucket-versioning --bucket "$TEST_BUCKET"; then
    assert_eq "Status after Suspended" "$(jqo '.Status // "(absent)"')" Suspended
fi

step "cleanup: BucketNotEmpty while versions and markers are left, then every version and marker deleted"
for k in "$KEY" "$OTHER"; do
    if run_ok "delete-object $k (a marker)" cli s3api delete-object --bucket "$TEST_BUCKET" --key "$k"; then
        assert_eq "delete-object $k: DeleteMarker" "$(jqo '.DeleteMarker // false')" true
    fi
done
if run_ok "list-objects-v2" cli s3api list-objects-v2 --bucket "$TEST_BUCKET"; then
    assert_eq "list-objects-v2: no current key" "$(current_keys)" ""
fi
run_err "delete-bucket with only noncurrent versions and markers fails with BucketNotEmpty" "(BucketNotEmpty)" \
    cli s3api delete-bucket --bucket "$TEST_BUCKET"
if run_ok "list-object-versions" cli s3api list-object-versions --bucket "$TEST_BUCKET"; then
    jqo '{Objects: [(.Versions // [] | .[]), (.DeleteMarkers // [] | .[]) | {Key, VersionId}], Quiet: false}' \
        >"$WORK/delete.json"
    total="$(jq '.Objects | length' "$WORK/delete.json")"
    assert_eq "2 versions and 2 markers are left" "$total" 4
    if run_ok "delete-objects of the $total versions and markers by VersionId" \
        cli s3api delete-objects --bucket "$TEST_BUCKET" --delete "file://$WORK/delete.json"; then
        assert_eq "delete-objects: every (Key, VersionId) reported Deleted" \
            "$(jqo '[.Deleted // [] | .[] | "\(.Key) \(.VersionId)"] | sort | join("|")')" \
            "$(jq -r '[.Objects[] | "\(.Key) \(.VersionId)"] | sort | join("|")' "$WORK/delete.json")"
        assert_eq "delete-objects: no Errors" "$(jqo '.Errors // [] | length')" 0
    fi
fi
if run_ok "list-object-versions after deleting everything" cli s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "no version or marker left" "$(entries | join_lines)" ""
fi
run_ok "delete-bucket $TEST_BUCKET" cli s3api delete-bucket --bucket "$TEST_BUCKET"
run_err "head-bucket after delete: 404" "(404)" cli s3api head-bucket --bucket "$TEST_BUCKET"
scenario_end
