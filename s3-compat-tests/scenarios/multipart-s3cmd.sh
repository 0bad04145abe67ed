#!/usr/bin/env bash
# s3cmd (Debian package) multipart: put --multipart-chunk-size-mb=5 of 20 MiB
# (4 parts), get, get --continue, info, sync twice; the 'multipart', 'listmp'
# and 'abortmp' commands on an unfinished upload made with aws-cli v2.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin multipart-s3cmd
s3cmd_env
s3api() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" --output json s3api "$@"; }
export AWS_PAGER=""
B="s3://$TEST_BUCKET"
MiB=$((1024 * 1024))
src="$FILES_DIR/20mib.bin"

step "client"
run_ok "s3cmd --version" s3c --version && log "  $OUT"
run_ok "s3cmd mb $B" s3c mb "$B"

step "put --multipart-chunk-size-mb=5: 20 MiB in 4 parts (the ETag shows the part count)"
run_ok "s3cmd put 20 MiB multipart" s3c put --multipart-chunk-size-mb=5 "$src" "$B/mp/20mib.bin"
if run_ok "head-object mp/20mib.bin (aws-cli)" s3api head-object --bucket "$TEST_BUCKET" --key mp/20mib.bin; then
    assert_eq "ContentLength" "$(jq -r .ContentLength <<<"$OUT")" $((20 * MiB))
    assert_eq "ETag is md5(part MD5s)-4 with 5 MiB chunks" "$(jq -r .ETag <<<"$OUT")" "$(multipart_etag "$src" $((5 * MiB)))"
fi
if run_ok "s3cmd info mp/20mib.bin" s3c info "$B/mp/20mib.bin"; then
    assert_contains "info: File size" "$OUT" "File size: $((20 * MiB))"
    # s3cmd keeps the whole-file MD5 in x-amz-meta-s3cmd-attrs and shows it.
    assert_contains "info: MD5 sum (from s3cmd's attrs)" "$OUT" "MD5 sum:   $(md5_of "$src")"
fi

step "get, and get --continue across part boundaries"
mkdir -p "$WORK/dl"
run_ok "s3cmd get mp/20mib.bin" s3c get --force "$B/mp/20mib.bin" "$WORK/dl/full" &&
    assert_same_file "downloaded multipart object equals the source" "$src" "$WORK/dl/full"
head -c $((5 * MiB - 7)) "$src" >"$WORK/dl/partial"
run_ok "s3cmd get --continue onto a partial file of 5 MiB - 7 B (Range from inside part 1)" \
    s3c get --continue "$B/mp/20mib.bin" "$WORK/dl/partial" &&
    assert_same_file "resumed download equals the source" "$src" "$WORK/dl/partial"

step "sync up twice with multipart: the second sync uploads nothing"
mkdir -p "$WORK/sync"
cp "$src" "$WORK/sync/20mib.bin"
cp "$FILES_DIR/one.bin" "$WORK/sync/one.bin"
run_ok "s3cmd sync --multipart-chunk-size-mb=5 sync/ -> $B/sync/" \
    s3c sync --multipart-chunk-size-mb=5 "$WORK/sync/" "$B/sync/" &&
    assert_eq "first sync uploaded 2 files" "$(grep -c "^upload:" <<<"$OUT$ERR")" 2
run_ok "s3cmd sync again" s3c sync --multipart-chunk-size-mb=5 "$WORK/sync/" "$B/sync/" &&
    assert_eq "nothing uploaded the second time (MD5 from s3cmd's attrs)" "$(grep -c "^upload:" <<<"$OUT$ERR")" 0

step "unfinished uploads: s3cmd multipart / listmp / abortmp"
id=""
run_ok "create-multipart-upload pending/x.bin (aws-cli)" \
    s3api create-multipart-upload --bucket "$TEST_BUCKET" --key pending/x.bin && id="$(jq -r .UploadId <<<"$OUT")"
head -c $((5 * MiB)) "$src" >"$WORK/p1"
run_ok "upload-part 1 (aws-cli)" s3api upload-part --bucket "$TEST_BUCKET" --key pending/x.bin --upload-id "$id" \
    --part-number 1 --body "$WORK/p1"
run_ok "upload-part 2 (aws-cli)" s3api upload-part --bucket "$TEST_BUCKET" --key pending/x.bin --upload-id "$id" \
    --part-number 2 --body "$FILES_DIR/one.bin"
if run_ok "s3cmd multipart $B" s3c multipart "$B"; then
    assert_contains "the upload is listed with its path and id" "$OUT" "$B/pending/x.bin	$id"
fi
if run_ok "s3cmd listmp $B/pending/x.bin $id" s3c listmp "$B/pending/x.bin" "$id"; then
    assert_eq "parts: number, ETag, size" "$(awk '$(NF-2) ~ /^[0-9]+$/ { print $(NF-2), $(NF-1), $NF }' <<<"$OUT" | join_lines)" \
        "1 \"$(md5_of "$WORK/p1")\" $((5 * MiB))|2 \"$(md5_of "$FILES_DIR/one.bin")\" 1"
fi
run_ok "s3cmd abortmp $B/pending/x.bin $id" s3c abortmp "$B/pending/x.bin" "$id"
if run_ok "s3cmd multipart $B after abort" s3c multipart "$B"; then
    assert_eq "no upload id left in the listing" "$(grep -c "$id" <<<"$OUT")" 0
fi
run_err "list-parts after abortmp fails with NoSuchUpload (aws-cli)" "(NoSuchUpload)" \
    s3api list-parts --bucket "$TEST_BUCKET" --key pending/x.bin --upload-id "$id"

step "cleanup"
run_ok "s3cmd del --recursive --force $B" s3c del --recursive --force "$B"
run_ok "s3cmd ls --recursive" s3c ls --recursive "$B" && assert_eq "no key left" "$OUT" ""
run_ok "s3cmd rb $B" s3c rb "$B"
scenario_end
