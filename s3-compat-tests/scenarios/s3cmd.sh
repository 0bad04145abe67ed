#!/usr/bin/env bash
# s3cmd (Debian package), SigV4, path style: mb/rb, put --disable-multipart with
# MIME type and x-amz-meta-*, ls (ListObjects v1), get, get --continue (resumed
# download through a Range request), info, cp (CopyObject), del, del --recursive
# (DeleteObjects), sync up and down.
#
# 'put FILE s3://b/dir/' uploads to 'dir/FILE', so s3cmd cannot create a 'dir/'
# marker: this scenario uses every other hostile key.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin s3cmd
s3cmd_env
B="s3://$TEST_BUCKET"
# keys_of: the keys in s3cmd ls output (DIR lines keep their trailing '/').
keys_of() { sed -n "s|^.* $B/||p" <<<"$OUT"; }

step "client"
run_ok "s3cmd --version" s3c --version && log "  $OUT"

step "buckets: create, errors, list"
run_ok "s3cmd mb $B" s3c mb "$B"
run_err "s3cmd mb s3://$BAD_BUCKET fails with InvalidBucketName" InvalidBucketName s3c mb "s3://$BAD_BUCKET"
run_ok "s3cmd mb $B again succeeds (us-east-1's answer for your own bucket, as S3)" s3c mb "$B"
run_ok "s3cmd ls (ListBuckets)" s3c ls && assert_eq "bucket list" "$(sed -n 's|^.* s3://||p' <<<"$OUT" | join_lines)" "$TEST_BUCKET"

step "put --disable-multipart: sizes, MIME type + metadata, hostile keys"
for k in "${SIZE_KEYS[@]}"; do
    run_ok "s3cmd put $k ($(size_of "$FILES_DIR/${k#sizes/}") B)" \
        s3c put --disable-multipart "$FILES_DIR/${k#sizes/}" "$B/$k"
done
run_ok "s3cmd put top.txt --mime-type --add-header x-amz-meta-*" \
    s3c put --disable-multipart --mime-type "text/plain; charset=utf-8" \
    --add-header "x-amz-meta-color:blue" --add-header "x-amz-meta-purpose:compat test" \
    "$FILES_DIR/top.txt" "$B/top.txt"
for k in "${HOSTILE_KEYS[@]}"; do
    run_ok "s3cmd put [$k]" s3c put --disable-multipart "$(local_file_for_key "$k")" "$B/$k"
done

step "info: size, MD5, MIME type, metadata"
if run_ok "s3cmd info top.txt" s3c info "$B/top.txt"; then
    assert_contains "info: File size" "$OUT" "File size: $(size_of "$FILES_DIR/top.txt")"
    assert_contains "info: MIME type" "$OUT" "MIME type: text/plain; charset=utf-8"
    assert_contains "info: MD5 sum" "$OUT" "MD5 sum:   $(md5_of "$FILES_DIR/top.txt")"
    assert_contains "info: x-amz-meta-color" "$OUT" "x-amz-meta-color: blue"
    assert_contains "info: x-amz-meta-purpose" "$OUT" "x-amz-meta-purpose: compat test"
fi

step "ls (ListObjects v1): exact keys, sizes, prefixes"
all_keys="$({ printf '%s\n' top.txt "${SIZE_KEYS[@]}" "${HOSTILE_KEYS[@]}"; } | sorted_lines | join_lines)"
if run_ok "s3cmd ls --recursive $B" s3c ls --recursive "$B"; then
    assert_eq "every key, in byte order" "$(keys_of | join_lines)" "$all_keys"
    assert_eq "size of sizes/5mib-minus-1.bin" \
        "$(awk '$NF == "'"$B"'/sizes/5mib-minus-1.bin" { print $3 }' <<<"$OUT")" $((5 * 1024 * 1024 - 1))
fi
run_ok "s3cmd ls $B/ (delimiter /)" s3c ls "$B/" &&
    assert_eq "root: prefixes then keys" "$(keys_of | join_lines)" "../|/|hostile/|sizes/|top.txt"
run_ok "s3cmd ls $B/hostile/" s3c ls "$B/hostile/" &&
    assert_eq "hostile/: prefixes then keys" "$(keys_of | join_lines)" \
        'hostile/a/|hostile/é/|hostile/amp&ersand.txt|hostile/percent%20literal.txt|hostile/plus+sign.txt|hostile/quote".txt|hostile/with space.txt'
run_ok "s3cmd ls $B/hostile/a/" s3c ls "$B/hostile/a/" &&
    assert_eq "hostile/a/: one prefix" "$(keys_of | join_lines)" "hostile/a//"
run_ok "s3cmd ls $B/sizes/" s3c ls "$B/sizes/" &&
    assert_eq "sizes/ keys" "$(keys_of | join_lines)" \
        "sizes/20mib.bin|sizes/5mib-minus-1.bin|sizes/5mib.bin|sizes/empty.bin|sizes/one.bin"

step "get: SHA-256 of every object"
mkdir -p "$WORK/dl"
for k in "${SIZE_KEYS[@]}"; do
    run_ok "s3cmd get $k" s3c get --force "$B/$k" "$WORK/dl/out" &&
        assert_same_file "downloaded $k equals the source" "$FILES_DIR/${k#sizes/}" "$WORK/dl/out"
    rm -f "$WORK/dl/out"
done
i=0
for k in "${HOSTILE_KEYS[@]}" top.txt; do
    i=$((i + 1))
    if [[ $k == top.txt ]]; then f="$FILES_DIR/top.txt"; else f="$(local_file_for_key "$k")"; fi
    run_ok "s3cmd get [$k]" s3c get --force "$B/$k" "$WORK/dl/h$i" &&
        assert_same_file "downloaded [$k] equals the source" "$f" "$WORK/dl/h$i"
done

step "get --continue: resume a partial download (Range request)"
head -c $((7 * 1024 * 1024 + 123)) "$FILES_DIR/20mib.bin" >"$WORK/dl/partial"
run_ok "s3cmd get --continue sizes/20mib.bin onto a 7 MiB + 123 B partial file" \
    s3c get --continue "$B/sizes/20mib.bin" "$WORK/dl/partial" &&
    assert_same_file "resumed download equals the source" "$FILES_DIR/20mib.bin" "$WORK/dl/partial"

step "cp (CopyObject): bytes and metadata"
run_ok "s3cmd cp sizes/5mib.bin copies/5mib.bin" s3c cp "$B/sizes/5mib.bin" "$B/copies/5mib.bin"
run_ok "s3cmd get copies/5mib.bin" s3c get --force "$B/copies/5mib.bin" "$WORK/dl/copy" &&
    assert_same_file "copy has the source's bytes" "$FILES_DIR/5mib.bin" "$WORK/dl/copy"
run_ok "s3cmd cp top.txt copies/top.txt" s3c cp "$B/top.txt" "$B/copies/top.txt"
if run_ok "s3cmd info copies/top.txt" s3c info "$B/copies/top.txt"; then
    assert_contains "copied MIME type" "$OUT" "MIME type: text/plain; charset=utf-8"
    assert_contains "copied x-amz-meta-color" "$OUT" "x-amz-meta-color: blue"
fi
run_ok "s3cmd cp [hostile/é/日本語.txt] [copies/é 日本 + copy.txt]" \
    s3c cp "$B/hostile/é/日本語.txt" "$B/copies/é 日本 + copy.txt"
run_ok "s3cmd get [copies/é 日本 + copy.txt]" s3c get --force "$B/copies/é 日本 + copy.txt" "$WORK/dl/hcopy" &&
    assert_same_file "hostile copy has the source's bytes" "$(local_file_for_key "hostile/é/日本語.txt")" "$WORK/dl/hcopy"

step "sync up and down (listing + MD5 comparison)"
mkdir -p "$WORK/sync-up" "$WORK/sync-down"
cp "$FILES_DIR"/{empty,one,5mib}.bin "$FILES_DIR/top.txt" "$WORK/sync-up/"
run_ok "s3cmd sync local dir -> sync/" s3c sync --disable-multipart "$WORK/sync-up/" "$B/sync/" &&
    assert_eq "first sync uploaded 4 files" "$(grep -c "^upload:" <<<"$OUT$ERR")" 4
run_ok "s3cmd sync sync/ -> another local dir" s3c sync "$B/sync/" "$WORK/sync-down/"
assert_eq "synced file list" "$(cd "$WORK/sync-down" && ls | join_lines)" "5mib.bin|empty.bin|one.bin|top.txt"
for f in empty.bin one.bin 5mib.bin top.txt; do
    assert_same_file "synced $f" "$WORK/sync-up/$f" "$WORK/sync-down/$f"
done
run_ok "s3cmd sync again uploads nothing" s3c sync --disable-multipart "$WORK/sync-up/" "$B/sync/" &&
    assert_eq "nothing uploaded the second time (same MD5 ETags)" "$(grep -c "^upload:" <<<"$OUT$ERR")" 0

step "delete: bucket not empty, single, recursive (DeleteObjects), bucket"
run_err "s3cmd rb $B (non-empty) fails with BucketNotEmpty" BucketNotEmpty s3c rb "$B"
run_ok "s3cmd del top.txt" s3c del "$B/top.txt"
run_ok "s3cmd ls $B/ after the delete" s3c ls "$B/" &&
    assert_eq "top.txt is gone" "$(keys_of | join_lines)" "../|/|copies/|hostile/|sizes/|sync/"
run_ok "s3cmd del --recursive --force $B (batch delete)" s3c del --recursive --force "$B"
run_ok "s3cmd ls --recursive after delete" s3c ls --recursive "$B" && assert_eq "no key left" "$OUT" ""
run_ok "s3cmd rb $B" s3c rb "$B"
run_ok "s3cmd ls after rb" s3c ls && assert_eq "no bucket left" "$OUT" ""
scenario_end
