#!/usr/bin/env bash
# Resumable downloads through presigned URLs (boto3 generate_presigned_url):
# curl --range then 'curl -C -'; a curl cut by --max-time then 'curl -C -';
# wget cut by a timeout then 'wget -c' (and once more on the complete file: 416);
# the object replaced mid-download: a resume with If-Range: <old ETag or date>
# must get 200 and the whole new object, with the current ETag or date a 206;
# If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin resume-download
export AWS_PAGER=""
s3api() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" --output json s3api "$@"; }
awss3() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" s3 "$@"; }
KEY="dl/object.bin"
MiB=$((1024 * 1024))

# presign SIGV: a presigned GET URL for $KEY (SIGV: s3v4, or default = SigV2 for us-east-1).
presign() {
    python3 - "$1" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["S3T_DIR"], "py"))
from compat import BUCKET, client
kw = {} if sys.argv[1] == "default" else {"signature_version": sys.argv[1]}
print(client(**kw).generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "dl/object.bin"},
                                          ExpiresIn=900))
PY
}
export S3T_DIR

# get OUT_FILE CURL_ARGS...: curl the URL (last argument) into OUT_FILE; sets CODE
# (HTTP status, 000 if none) and CURL_RC; headers go to $WORK/h.
CODE="" CURL_RC=0
get() {
    local out="$1"
    shift
    CURL_RC=0
    CODE="$(curl -sS --path-as-is -D "$WORK/h" -o "$out" -w '%{http_code}' "$@" 2>"$WORK/curl.err")" || CURL_RC=$?
}
# hdr NAME: a response header of the last get (the last occurrence, without CR).
hdr() { grep -i "^$1:" "$WORK/h" | tail -n 1 | cut -d: -f2- | sed 's/^ *//; s/\r$//'; }
s3_code() { sed -n 's|.*<Code>\([^<]*\)</Code>.*|\1|p' "$1"; }

step "setup: a 50 MiB object uploaded with aws s3 cp (multipart, 8 MiB parts)"
run_ok "create-bucket $TEST_BUCKET" s3api create-bucket --bucket "$TEST_BUCKET"
old="$WORK/old.bin" new="$WORK/new.bin"
make_random_file "$old" 50
{ make_random_file /dev/stdout 40; head -c 123 /dev/urandom; } >"$new"
N_OLD=$(size_of "$old") N_NEW=$(size_of "$new")
run_ok "aws s3 cp old.bin s3://$TEST_BUCKET/$KEY" awss3 cp "$old" "s3://$TEST_BUCKET/$KEY"
URL4="$(presign s3v4)" URL2="$(presign default)"
log "  SigV4 URL: ${URL4:0:120}…"
log "  SigV2 URL: ${URL2:0:120}…"
mkdir -p "$WORK/dl"

step "curl --range 0-HALF, then curl -C - (Range: bytes=HALF-)"
f="$WORK/dl/curl-range.bin"
half=$((N_OLD / 2 + 12345))
get "$f" -r "0-$((half - 1))" "$URL4"
assert_eq "first piece: status" "$CODE" 206
assert_eq "first piece: size" "$(size_of "$f")" "$half"
get "$f" -C - "$URL4"
assert_eq "resume: curl exit code" "$CURL_RC" 0
assert_eq "resume: status" "$CODE" 206
assert_eq "resume: Content-Range" "$(hdr content-range)" "bytes $half-$((N_OLD - 1))/$N_OLD"
assert_same_file "curl -C - result equals the source" "$old" "$f"
get "$f" -C - "$URL4"
log "  curl -C - on the complete file: exit $CURL_RC, HTTP $CODE ($(head -c 200 "$WORK/curl.err"))"
assert_eq "curl -C - on the complete file: 416 (bytes=$N_OLD- is past the end)" "$CODE" 416
assert_same_file "the complete file is left intact" "$old" "$f"

step "curl cut by --limit-rate 8M --max-time 2, then curl -C -"
f="$WORK/dl/curl-cut.bin"
get "$f" --limit-rate 8M --max-time 2 "$URL4"
have=$(size_of "$f" 2>/dev/null || echo 0)
assert_eq "curl was cut by --max-time (exit 28)" "$CURL_RC" 28
if ((have > 0 && have < N_OLD)); then pass "a partial file of $have bytes"; else fail "a partial file" "size $have of $N_OLD"; fi
get "$f" -C - "$URL4"
assert_eq "resume: status" "$CODE" 206
assert_eq "resume: Content-Range" "$(hdr content-range)" "bytes $have-$((N_OLD - 1))/$N_OLD"
assert_same_file "resumed cut download equals the source" "$old" "$f"

step "wget (SigV2 URL) cut by a 2 s timeout, then wget -c"
f="$WORK/dl/wget.bin"
log "  $(wget --version | head -n 1)"
timeout -s INT 2 wget -q --limit-rate=8m -O "$f" "$URL2"
have=$(size_of "$f" 2>/dev/null || echo 0)
if ((have > 0 && have < N_OLD)); then pass "wget left a partial file of $have bytes"; else fail "wget left a partial file" "size $have of $N_OLD"; fi
if run_ok "wget -c" wget -c --progress=dot:giga -O "$f" "$URL2"; then
    assert_contains "wget resumed with a 206" "$ERR" "206 Partial Content"
    assert_contains "wget fetched only the rest" "$ERR" "Length: $N_OLD (50M), $((N_OLD - have)) ("
fi
assert_same_file "wget -c result equals the source" "$old" "$f"
if run_ok "wget -c on the complete file" wget -c -O "$f" "$URL2"; then
    assert_contains "wget: 416, already fully retrieved" "$ERR" "The file is already fully retrieved"
fi
assert_same_file "the complete file is left intact" "$old" "$f"

step "the object is replaced mid-download: If-Range with the old ETag / date gives 200 + the new object"
f="$WORK/dl/replaced.bin"
have=$((17 * MiB + 5))
get "$f" -r "0-$((have - 1))" "$URL4"
assert_eq "first piece of the old object: status" "$CODE" 206
old_etag="$(hdr etag)" old_date="$(hdr last-modified)"
assert_eq "old ETag is a quoted multipart ETag" "$old_etag" "$(multipart_etag "$old" $((8 * MiB)))"
log "  old ETag $old_etag, Last-Modified $old_date"
sleep 1.2 # Last-Modified has a 1 s resolution: make the new one differ
run_ok "put-object: replace $KEY with a 40 MiB + 123 B object" \
    s3api put-object --bucket "$TEST_BUCKET" --key "$KEY" --body "$new"
new_etag="\"$(md5_of "$new")\""
# resume FILE HAVE IF_RANGE: the resume a careful client makes. 206: append; 200: start over.
resume() {
    get "$WORK/dl/rest" -H "Range: bytes=$2-" -H "If-Range: $3" "$URL4"
    if [[ $CODE == 206 ]]; then
        cat "$WORK/dl/rest" >>"$1"
    elif [[ $CODE == 200 ]]; then
        mv "$WORK/dl/rest" "$1"
    fi
}
resume "$f" "$have" "$old_etag"
assert_eq "If-Range: <old ETag> -> 200 (the range is ignored)" "$CODE" 200
assert_eq "200: Content-Length is the new object's" "$(hdr content-length)" "$N_NEW"
assert_eq "200: ETag is the new object's" "$(hdr etag)" "$new_etag"
assert_eq "200: no Content-Range" "$(hdr content-range)" ""
assert_same_file "the file is the whole new object, not a mix" "$new" "$f"

f="$WORK/dl/replaced-date.bin"
slice_of "$old" 0 "$have" >"$f"
resume "$f" "$have" "$old_date"
assert_eq "If-Range: <old Last-Modified> -> 200" "$CODE" 200
assert_same_file "the file is the whole new object" "$new" "$f"

step "If-Range with the current ETag / date gives 206 and the rest"
f="$WORK/dl/current.bin"
have=$((9 * MiB + 77))
get "$f" -r "0-$((have - 1))" "$URL4"
assert_eq "first piece of the new object: status" "$CODE" 206
cur_date="$(hdr last-modified)"
resume "$f" "$have" "$new_etag"
assert_eq "If-Range: <current ETag> -> 206" "$CODE" 206
assert_eq "206: Content-Range" "$(hdr content-range)" "bytes $have-$((N_NEW - 1))/$N_NEW"
assert_same_file "resumed file equals the new object" "$new" "$f"
f="$WORK/dl/current-date.bin"
slice_of "$new" 0 "$have" >"$f"
resume "$f" "$have" "$cur_date"
assert_eq "If-Range: <current Last-Modified> -> 206" "$CODE" 206
assert_same_file "resumed file equals the new object" "$new" "$f"

step "conditional GETs: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since"
cond() { # LABEL STATUS [S3 error code] CURL_ARGS...
    local label="$1" want="$2" code="$3"
    shift 3
    get "$WORK/dl/cond" "$@" "$URL4"
    assert_eq "$label: HTTP $want" "$CODE" "$want"
    [[ -n "$code" ]] && assert_eq "$label: error code" "$(s3_code "$WORK/dl/cond")" "$code"
    return 0
}
cond "If-Match: <old ETag>" 412 PreconditionFailed -H "If-Match: $old_etag"
cond "If-Match: <current ETag> + Range" 206 "" -H "If-Match: $new_etag" -r 0-99
cond "If-None-Match: <current ETag>" 304 "" -H "If-None-Match: $new_etag"
cond "If-None-Match: <old ETag>" 200 "" -H "If-None-Match: $old_etag"
cond "If-Modified-Since: <Last-Modified>" 304 "" -H "If-Modified-Since: $cur_date"
cond "If-Unmodified-Since: <old Last-Modified>" 412 PreconditionFailed -H "If-Unmodified-Since: $old_date"
cond "If-Unmodified-Since: <Last-Modified>" 200 "" -H "If-Unmodified-Since: $cur_date"
cond "Range past the end" 416 InvalidRange -r "$N_NEW-"

step "cleanup"
run_ok "delete-object $KEY" s3api delete-object --bucket "$TEST_BUCKET" --key "$KEY"
run_ok "delete-bucket $TEST_BUCKET" s3api delete-bucket --bucket "$TEST_BUCKET"
scenario_end
