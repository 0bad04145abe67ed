#!/usr/bin/env bash
# rclone (Debian package) on a versioned bucket: versioning switched on with aws-cli
# v2 and read back with 'rclone backend versioning'; two uploads of a key make two
# versions; '--s3-versions' lists the old one as NAME-vYYYY-MM-DD-HHMMSS-mmm.EXT
# (the time is the version's LastModified in UTC, milliseconds truncated);
# 'rclone cat' of that name gives the old bytes; '--s3-version-at' lists, copies
# and reads the bucket as it was at a time between the uploads (and before them);
# 'rclone deletefile' makes a delete marker (then --s3-versions shows every
# version under a -v name and --s3-version-at now hides the key); deleting an
# old version's -v name deletes that version by id; 'rclone backend cleanup-hidden'
# removes the old versions and the markers and keeps the current versions; after
# a last deletefile + cleanup-hidden, aws-cli delete-bucket succeeds. A second
# bucket (versioning set by 'rclone backend versioning B Enabled') is emptied and
# removed by 'rclone purge --s3-versions'. aws-cli v2 s3api checks what rclone did
# (list-object-versions, head-object, get-object --version-id). Version ids are
# opaque: they are compared with the ids the server listed.
#
# rclone 1.60 (Debian 12) cannot address a single object below the bucket's top
# level with --s3-versions or --s3-version-at: 'rclone cat b/dir/f-v<time>.txt'
# prints nothing and exits 0 (rclone 1.63 changelog: "Fix --s3-versions on
# individual objects"). So the single-object commands use the top-level key
# $KEEP, and the key in a folder, $DOC, is reached through its folder with an
# --include filter, which works with 1.60 too.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin versioning-rclone
rclone_env
R="t:$TEST_BUCKET"
PURGE_BUCKET="$TEST_BUCKET-purge"
DOC_DIR=docs
DOC="$DOC_DIR/report.txt" # two versions, then a marker; old versions get -v<time> before ".txt"
KEEP=keep.bin             # at the top level; three versions; the current one survives cleanup-hidden
# rclone's aws-sdk-go refuses AWS_CA_BUNDLE on its custom transport: unset them all.
rc() {
    without_ca_vars rclone --config "$WORK/rclone.conf" --s3-upload-cutoff 64M \
        --low-level-retries 1 --retries 1 "$@"
}
# s3api ARGS...: aws-cli v2, to look at what rclone did from another client.
s3api() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" --output json s3api "$@"; }
export AWS_PAGER=""
EMPTY_JSON='{}'
# jqo FILTER [jq args...]: FILTER on the last answer ($OUT; an empty answer is {}).
jqo() {
    local filter="$1"
    shift
    jq -r "$@" "$filter" <<<"${OUT:-$EMPTY_JSON}"
}
# The UTC time now, to the second, as rclone's Time options take it (RFC 3339).
utc_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
epoch_ms() { # epoch_ms TIME: milliseconds since the epoch of an ISO 8601 time
    python3 -c 'import datetime, sys; t = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00")); print(int(t.timestamp() * 1000))' "$1"
}
# version_name KEY LAST_MODIFIED: the name rclone gives an old version of KEY:
# "-v" + the UTC time as 2006-01-02-150405-000 (milliseconds truncated), inserted
# before the extension.
version_name() {
    python3 - "$1" "$2" <<'PY'
import datetime, posixpath, sys
key, lm = sys.argv[1], sys.argv[2]
t = datetime.datetime.fromisoformat(lm.replace("Z", "+00:00")).astimezone(datetime.timezone.utc)
suffix = t.strftime("-v%Y-%m-%d-%H%M%S-") + f"{t.microsecond // 1000:03d}"
head, base = posixpath.split(key)
stem, ext = posixpath.splitext(base)
print(posixpath.join(head, stem + suffix + ext))
PY
}
# versions_of KEY: "VersionId IsLatest" of KEY's versions in the last list-object-versions, '|'-joined.
versions_of() { jqo '[.Versions // [] | .[] | select(.Key == $k) | "\(.VersionId) \(.IsLatest)"] | join("|")' --arg k "$1"; }
markers_of() { jqo '[.DeleteMarkers // [] | .[] | select(.Key == $k) | "\(.IsLatest)"] | join("|")' --arg k "$1"; }
# field_of KEY INDEX FIELD: FIELD of KEY's INDEX-th version (0 = newest) in the last answer.
field_of() { jqo '[.Versions // [] | .[] | select(.Key == $k)][$i | tonumber][$f] // ""' --arg k "$1" --arg i "$2" --arg f "$3"; }
# rclone_files ARGS...: rclone lsf -R --files-only --format ps ARGS, sorted and '|'-joined.
rclone_files() {
    run_ok "rclone lsf -R --files-only --format ps $*" rc lsf -R --files-only --format ps "$@" || return 1
    OUT="$(sorted_lines <<<"$OUT" | join_lines)"
}
# cat_is LABEL EXPECTED_FILE ARGS...: rclone cat ARGS must give EXPECTED_FILE's bytes.
cat_is() {
    local label="$1" expected="$2"
    shift 2
    run_to_file "rclone cat $*" "$WORK/dl/cat.out" rc cat "$@" &&
        assert_same_file "$label" "$expected" "$WORK/dl/cat.out"
}

mkdir -p "$WORK/up" "$WORK/dl"
F1="$WORK/up/report-1.txt" F2="$WORK/up/report-2.txt" K1="$WORK/up/keep-1.bin" K2="$WORK/up/keep-2.bin"
head -c 10000 /dev/urandom >"$F1"
head -c 20001 /dev/urandom >"$F2"
head -c 3000 /dev/urandom >"$K1"
head -c 4001 /dev/urandom >"$K2"
S1="$(size_of "$F1")" S2="$(size_of "$F2")" SK1="$(size_of "$K1")" SK2="$(size_of "$K2")"

step "client"
run_ok "rclone version" rc version && log "  ${OUT%%$'\n'*}"
run_ok "aws --version (aws-cli v2 checks what rclone did)" "${AWSCLI_V2:-/usr/bin/aws}" --version &&
    assert_contains "it is aws-cli v2" "$OUT$ERR" "aws-cli/2."
"${AWSCLI_V2:-/usr/bin/aws}" configure set default.s3.addressing_style path

step "bucket versioning: enabled with aws-cli, read back by rclone"
run_ok "rclone mkdir $R" rc mkdir "$R"
run_ok "rclone backend versioning $R (fresh bucket)" rc backend versioning "$R" &&
    assert_eq "rclone: a fresh bucket is Unversioned" "$OUT" Unversioned
run_ok "put-bucket-versioning Status=Enabled (aws-cli)" \
    s3api put-bucket-versioning --bucket "$TEST_BUCKET" --versioning-configuration Status=Enabled
run_ok "rclone backend versioning $R" rc backend versioning "$R" &&
    assert_eq "rclone: the bucket is Enabled" "$OUT" Enabled

step "two uploads of $DOC and of $KEEP, with a time between them"
T0="$(utc_now)" # before any upload: nothing existed
sleep 1.2
run_ok "rclone copyto $DOC (version 1, $S1 B)" rc copyto "$F1" "$R/$DOC"
run_ok "rclone copyto $KEEP (version 1, $SK1 B)" rc copyto "$K1" "$R/$KEEP"
# Whole seconds: T is after version 1 (the truncation loses < 1 s of the 1.2 s
# sleep) and before version 2 (1.2 s later).
sleep 1.2
T="$(utc_now)"
sleep 1.2
run_ok "rclone copyto $DOC (version 2, $S2 B)" rc copyto "$F2" "$R/$DOC"
run_ok "rclone copyto $KEEP (version 2, $SK2 B)" rc copyto "$K2" "$R/$KEEP"
log "  T0 = $T0 (before the uploads), T = $T (between them)"

V1=missing-v1 V2=missing-v2 KV1=missing-kv1 KV2=missing-kv2 LM1="" LM2="" KLM1=""
if run_ok "list-object-versions (aws-cli)" s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$DOC: two versions, sizes newest first" \
        "$(jqo '[.Versions // [] | .[] | select(.Key == $k) | .Size] | join("|")' --arg k "$DOC")" "$S2|$S1"
    assert_eq "$KEEP: two versions, sizes newest first" \
        "$(jqo '[.Versions // [] | .[] | select(.Key == $k) | .Size] | join("|")' --arg k "$KEEP")" "$SK2|$SK1"
    V2="$(field_of "$DOC" 0 VersionId)" V1="$(field_of "$DOC" 1 VersionId)"
    KV2="$(field_of "$KEEP" 0 VersionId)" KV1="$(field_of "$KEEP" 1 VersionId)"
    LM1="$(field_of "$DOC" 1 LastModified)" LM2="$(field_of "$DOC" 0 LastModified)"
    KLM1="$(field_of "$KEEP" 1 LastModified)"
    assert_eq "$DOC: version 2 is the latest" "$(versions_of "$DOC")" "$V2 true|$V1 false"
    assert_eq "$KEEP: version 2 is the latest" "$(versions_of "$KEEP")" "$KV2 true|$KV1 false"
    if [[ -n "$V1" && -n "$V2" && "$V1" != "$V2" && "$KV1" != "$KV2" && "$V1" != null && "$KV1" != null ]]; then
        pass "each upload made a new, real VersionId ($V1, $V2, $KV1, $KV2)"
    else
        fail "each upload made a new, real VersionId" "$DOC: '$V1' '$V2'; $KEEP: '$KV1' '$KV2'"
    fi
    log "  $DOC version 1 LastModified $LM1, version 2 $LM2"
fi
if [[ -n "$LM1" && -n "$LM2" ]]; then
    t_ms="$(epoch_ms "$T")"
    if (($(epoch_ms "$LM1") <= t_ms && t_ms < $(epoch_ms "$LM2"))); then
        pass "T is between the two versions' LastModified"
    else
        fail "T is between the two versions' LastModified" "version 1 $LM1, T $T, version 2 $LM2"
    fi
fi
OLD1="$(version_name "$DOC" "${LM1:-1970-01-01T00:00:00Z}")"
KOLD1="$(version_name "$KEEP" "${KLM1:-1970-01-01T00:00:00Z}")"

step "listings: only the current versions, and the old ones with --s3-versions"
rclone_files "$R" && assert_eq "lsf without --s3-versions: the current versions" "$OUT" "$DOC;$S2|$KEEP;$SK2"
rclone_files --s3-versions "$R" &&
    assert_eq "lsf --s3-versions: the old versions too, named NAME-v<LastModified>.EXT" "$OUT" \
        "$(printf '%s\n' "$DOC;$S2" "$OLD1;$S1" "$KEEP;$SK2" "$KOLD1;$SK1" | sorted_lines | join_lines)"
if run_ok "rclone ls --s3-versions $R" rc ls --s3-versions "$R"; then
    assert_contains "rclone ls --s3-versions shows $OLD1" "$OUT" " $S1 $OLD1"
    assert_contains "rclone ls --s3-versions shows $DOC" "$OUT" " $S2 $DOC"
fi

step "rclone cat: the old version by its -v name, the current one by its name"
cat_is "cat --s3-versions $KOLD1: version 1's bytes (SHA-256)" "$K1" --s3-versions "$R/$KOLD1"
cat_is "cat $KEEP: version 2's bytes" "$K2" "$R/$KEEP"
cat_is "cat --s3-versions $DOC_DIR/ --include /${OLD1#"$DOC_DIR/"}: version 1's bytes" "$F1" \
    --s3-versions "$R/$DOC_DIR" --include "/${OLD1#"$DOC_DIR/"}"
cat_is "cat $DOC: version 2's bytes" "$F2" "$R/$DOC"

step "--s3-version-at: the bucket as it was at T (between the uploads) and at T0 (before them)"
rclone_files --s3-version-at "$T" "$R" &&
    assert_eq "lsf --s3-version-at T: version 1 of each key, under its own name" "$OUT" "$DOC;$S1|$KEEP;$SK1"
run_ok "rclone copy --s3-version-at T $R dl/at-T" rc copy --s3-version-at "$T" "$R" "$WORK/dl/at-T"
assert_same_file "copy --s3-version-at T: $DOC is version 1" "$F1" "$WORK/dl/at-T/$DOC"
assert_same_file "copy --s3-version-at T: $KEEP is version 1" "$K1" "$WORK/dl/at-T/$KEEP"
assert_eq "copy --s3-version-at T: nothing else was copied" \
    "$(cd "$WORK/dl/at-T" && find . -type f | sed 's|^\./||' | sorted_lines | join_lines)" "$DOC|$KEEP"
cat_is "cat --s3-version-at T $KEEP: version 1" "$K1" --s3-version-at "$T" "$R/$KEEP"
cat_is "cat --s3-version-at T $DOC_DIR/ --include /report.txt: version 1" "$F1" \
    --s3-version-at "$T" "$R/$DOC_DIR" --include /report.txt
rclone_files --s3-version-at "$T0" "$R" && assert_eq "lsf --s3-version-at T0: nothing yet" "$OUT" ""

step "rclone deletefile $DOC: a delete marker (checked with aws-cli)"
run_ok "rclone deletefile $R/$DOC" rc deletefile "$R/$DOC"
if run_ok "list-object-versions (aws-cli)" s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$DOC: one delete marker, and it is the latest" "$(markers_of "$DOC")" true
    assert_eq "$DOC: both versions kept, neither latest" "$(versions_of "$DOC")" "$V2 false|$V1 false"
    assert_eq "$KEEP: untouched" "$(versions_of "$KEEP")" "$KV2 true|$KV1 false"
fi
run_err "head-object $DOC (latest is a marker): 404 (aws-cli)" "(404)" \
    s3api head-object --bucket "$TEST_BUCKET" --key "$DOC"
rclone_files "$R" && assert_eq "lsf: $DOC is gone" "$OUT" "$KEEP;$SK2"
OLD2="$(version_name "$DOC" "${LM2:-1970-01-01T00:00:00Z}")"
rclone_files --s3-versions "$R" &&
    assert_eq "lsf --s3-versions: both versions of $DOC under -v names, the marker not shown" "$OUT" \
        "$(printf '%s\n' "$OLD2;$S2" "$OLD1;$S1" "$KEEP;$SK2" "$KOLD1;$SK1" | sorted_lines | join_lines)"
cat_is "cat --s3-versions $DOC_DIR/ --include /${OLD2#"$DOC_DIR/"}: version 2, behind the marker" "$F2" \
    --s3-versions "$R/$DOC_DIR" --include "/${OLD2#"$DOC_DIR/"}"
rclone_files --s3-version-at "$T" "$R" &&
    assert_eq "lsf --s3-version-at T: still version 1 of $DOC" "$OUT" "$DOC;$S1|$KEEP;$SK1"
sleep 1.2
rclone_files --s3-version-at "$(utc_now)" "$R" &&
    assert_eq "lsf --s3-version-at now: $DOC hidden by its marker" "$OUT" "$KEEP;$SK2"

step "deleting an old version by its -v name (--s3-versions): that version is deleted by id"
run_ok "rclone delete --s3-versions $R/$DOC_DIR --include /${OLD1#"$DOC_DIR/"}" \
    rc delete --s3-versions "$R/$DOC_DIR" --include "/${OLD1#"$DOC_DIR/"}"
run_ok "rclone deletefile --s3-versions $R/$KOLD1" rc deletefile --s3-versions "$R/$KOLD1"
if run_ok "list-object-versions (aws-cli)" s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$DOC: version 1 is gone, version 2 kept" "$(versions_of "$DOC")" "$V2 false"
    assert_eq "$DOC: still one marker, the latest (no new marker)" "$(markers_of "$DOC")" true
    assert_eq "$KEEP: version 1 is gone, version 2 is still the latest" "$(versions_of "$KEEP")" "$KV2 true"
    assert_eq "$KEEP: no marker" "$(markers_of "$KEEP")" ""
fi
run_err "get-object $DOC --version-id <version 1> fails with NoSuchVersion (aws-cli)" "(NoSuchVersion)" \
    s3api get-object --bucket "$TEST_BUCKET" --key "$DOC" --version-id "$V1" "$WORK/dl/gone"
cat_is "cat $KEEP: still version 2" "$K2" "$R/$KEEP"

step "rclone backend cleanup-hidden: old versions and markers go, current versions stay"
K3="$WORK/up/keep-3.bin"
head -c 5002 /dev/urandom >"$K3"
SK3="$(size_of "$K3")"
run_ok "rclone copyto $KEEP (version 3, $SK3 B)" rc copyto "$K3" "$R/$KEEP"
KV3=missing-kv3
if run_ok "list-object-versions --prefix $KEEP (aws-cli)" \
    s3api list-object-versions --bucket "$TEST_BUCKET" --prefix "$KEEP"; then
    KV3="$(field_of "$KEEP" 0 VersionId)"
    assert_eq "$KEEP: version 3 is the latest, version 2 kept" "$(versions_of "$KEEP")" "$KV3 true|$KV2 false"
fi
run_ok "rclone backend cleanup-hidden $R" rc backend cleanup-hidden "$R"
if run_ok "list-object-versions (aws-cli)" s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "$DOC: no version left" "$(versions_of "$DOC")" ""
    assert_eq "$DOC: no marker left" "$(markers_of "$DOC")" ""
    assert_eq "$KEEP: only the current version (3) is left" "$(versions_of "$KEEP")" "$KV3 true"
fi
rclone_files --s3-versions "$R" && assert_eq "lsf --s3-versions: only $KEEP" "$OUT" "$KEEP;$SK3"
cat_is "cat $KEEP: still version 3" "$K3" "$R/$KEEP"

step "the last key: rclone deletefile (a marker), BucketNotEmpty, cleanup-hidden, then delete-bucket"
run_ok "rclone deletefile $R/$KEEP" rc deletefile "$R/$KEEP"
rclone_files "$R" && assert_eq "lsf: no file left" "$OUT" ""
run_err "delete-bucket with a version and a marker left fails with BucketNotEmpty (aws-cli)" "(BucketNotEmpty)" \
    s3api delete-bucket --bucket "$TEST_BUCKET"
run_ok "rclone backend cleanup-hidden $R" rc backend cleanup-hidden "$R"
if run_ok "list-object-versions (aws-cli)" s3api list-object-versions --bucket "$TEST_BUCKET"; then
    assert_eq "no version or marker left" \
        "$(jqo '[(.Versions // [] | .[]), (.DeleteMarkers // [] | .[]) | "\(.Key) \(.VersionId)"] | join("|")')" ""
fi
# If rclone left something, delete it by id so the bucket can go (the checks above failed already).
if [[ -n "$(jqo '[(.Versions // []), (.DeleteMarkers // []) | .[]] | .[0].Key // ""')" ]]; then
    jqo '{Objects: [(.Versions // [] | .[]), (.DeleteMarkers // [] | .[]) | {Key, VersionId}], Quiet: true}' \
        >"$WORK/leftover.json"
    run_ok "delete-objects of what rclone left, by VersionId (aws-cli)" \
        s3api delete-objects --bucket "$TEST_BUCKET" --delete "file://$WORK/leftover.json"
fi
run_ok "delete-bucket $TEST_BUCKET (aws-cli)" s3api delete-bucket --bucket "$TEST_BUCKET"
run_err "head-bucket after delete: 404 (aws-cli)" "(404)" s3api head-bucket --bucket "$TEST_BUCKET"

step "rclone purge --s3-versions: every version and marker deleted by id, then the bucket"
RP="t:$PURGE_BUCKET"
run_ok "rclone mkdir $RP" rc mkdir "$RP"
run_ok "rclone backend versioning $RP Enabled" rc backend versioning "$RP" Enabled &&
    assert_eq "rclone backend versioning set Enabled" "$OUT" Enabled
if run_ok "get-bucket-versioning $PURGE_BUCKET (aws-cli)" s3api get-bucket-versioning --bucket "$PURGE_BUCKET"; then
    assert_eq "aws-cli sees Status Enabled" "$(jqo '.Status // "(absent)"')" Enabled
fi
run_ok "rclone copyto $DOC (version 1)" rc copyto "$F1" "$RP/$DOC"
run_ok "rclone copyto $DOC (version 2)" rc copyto "$F2" "$RP/$DOC"
run_ok "rclone copyto $KEEP" rc copyto "$K1" "$RP/$KEEP"
run_ok "rclone deletefile $RP/$DOC (a marker)" rc deletefile "$RP/$DOC"
if run_ok "list-object-versions $PURGE_BUCKET (aws-cli)" s3api list-object-versions --bucket "$PURGE_BUCKET"; then
    assert_eq "3 versions and 1 marker" "$(jqo '"\(.Versions // [] | length) \(.DeleteMarkers // [] | length)"')" "3 1"
fi
run_ok "rclone purge --s3-versions $RP" rc purge --s3-versions "$RP"
run_err "head-bucket $PURGE_BUCKET after the purge: 404 (aws-cli)" "(404)" \
    s3api head-bucket --bucket "$PURGE_BUCKET"
run_ok "rclone lsf t:" rc lsf t: && assert_eq "no bucket left" "$OUT" ""
scenario_end
