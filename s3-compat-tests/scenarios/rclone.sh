#!/usr/bin/env bash
# rclone (Debian package): mkdir, copyto (single PUT: --s3-upload-cutoff 64M),
# lsf/lsjson with ListObjects v1 and v2, with and without encoding-type=url,
# cat --offset/--count (ranged GET), md5sum/check, server-side copy, delete, purge.
#
# rclone treats keys as file paths, so it cannot address 'a//b', a leading '/',
# '../x' or a 'dir/' marker (its path cleaning and encoding rewrite them): this
# scenario uses the other hostile keys only.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin rclone
R="t:$TEST_BUCKET"
# rclone's aws-sdk-go refuses AWS_CA_BUNDLE on its custom transport: unset them all.
rc() {
    without_ca_vars rclone --config "$WORK/rclone.conf" --s3-upload-cutoff 64M \
        --low-level-retries 1 --retries 1 "$@"
}
rclone_env

KEYS=("${HOSTILE_KEYS[@]:0:6}") # the hostile keys without the path oddities

step "client"
run_ok "rclone version" rc version && log "  ${OUT%%$'\n'*}"

step "buckets: create, errors, list"
run_ok "rclone mkdir $R" rc mkdir "$R"
run_err "rclone mkdir t:$BAD_BUCKET fails with InvalidBucketName" InvalidBucketName rc mkdir "t:$BAD_BUCKET"
run_ok "rclone mkdir $R again (re-creating your own bucket succeeds in us-east-1)" rc mkdir "$R"
run_ok "rclone lsf t: (ListBuckets)" rc lsf t: && assert_eq "bucket list" "$(join_lines <<<"$OUT")" "$TEST_BUCKET/"

step "uploads: sizes, metadata, hostile keys (single PUT each)"
for k in "${SIZE_KEYS[@]}"; do
    run_ok "rclone copyto $k ($(size_of "$FILES_DIR/${k#sizes/}") B)" rc copyto "$FILES_DIR/${k#sizes/}" "$R/$k"
done
run_ok "rclone copyto top.txt -M --metadata-set color=blue" \
    rc copyto -M --metadata-set color=blue --metadata-set "purpose=compat test" "$FILES_DIR/top.txt" "$R/top.txt"
for k in "${KEYS[@]}"; do
    run_ok "rclone copyto [$k]" rc copyto "$(local_file_for_key "$k")" "$R/$k"
done

step "metadata and content type round trip"
if run_ok "rclone lsjson -M top.txt" rc lsjson -M "$R/top.txt"; then
    assert_eq "content-type (from the .txt extension)" "$(jq -r '.[0].MimeType' <<<"$OUT")" "text/plain; charset=utf-8"
    assert_eq "x-amz-meta-color" "$(jq -r '.[0].Metadata.color' <<<"$OUT")" "blue"
    assert_eq "x-amz-meta-purpose" "$(jq -r '.[0].Metadata.purpose' <<<"$OUT")" "compat test"
    assert_eq "size" "$(jq -r '.[0].Size' <<<"$OUT")" "$(size_of "$FILES_DIR/top.txt")"
fi

step "listings with ListObjects v1 and v2, with and without encoding-type=url"
all_keys="$({ printf '%s\n' top.txt "${SIZE_KEYS[@]}" "${KEYS[@]}"; } | sorted_lines | join_lines)"
all_sizes="$({
    printf 'top.txt;%s\n' "$(size_of "$FILES_DIR/top.txt")"
    for k in "${SIZE_KEYS[@]}"; do printf '%s;%s\n' "$k" "$(size_of "$FILES_DIR/${k#sizes/}")"; done
    for k in "${KEYS[@]}"; do printf '%s;%s\n' "$k" "$(size_of "$(local_file_for_key "$k")")"; done
} | sorted_lines | join_lines)"
for version in 1 2; do
    for enc in true false; do
        opts=(--s3-list-version "$version" --s3-list-url-encode "$enc")
        label="list v$version url-encode=$enc"
        run_ok "$label: lsf -R --files-only" rc lsf "${opts[@]}" -R --files-only "$R" &&
            assert_eq "$label: every key" "$(sorted_lines <<<"$OUT" | join_lines)" "$all_keys"
        run_ok "$label: lsf -R --format ps (sizes)" rc lsf "${opts[@]}" -R --files-only --format ps "$R" &&
            assert_eq "$label: every size" "$(sorted_lines <<<"$OUT" | join_lines)" "$all_sizes"
        run_ok "$label: lsf of the root (delimiter /)" rc lsf "${opts[@]}" "$R" &&
            assert_eq "$label: root entries" "$(join_lines <<<"$OUT")" "hostile/|sizes/|top.txt"
        run_ok "$label: lsf hostile/ (prefix + delimiter)" rc lsf "${opts[@]}" "$R/hostile" &&
            assert_eq "$label: hostile/ entries" "$(sorted_lines <<<"$OUT" | join_lines)" \
                'amp&ersand.txt|percent%20literal.txt|plus+sign.txt|quote".txt|with space.txt|é/'
        run_ok "$label: lsf sizes/" rc lsf "${opts[@]}" "$R/sizes" &&
            assert_eq "$label: sizes/ entries" "$(join_lines <<<"$OUT")" \
                "20mib.bin|5mib-minus-1.bin|5mib.bin|empty.bin|one.bin"
    done
done

step "downloads: SHA-256 of every object, md5sum and check against the ETags"
mkdir -p "$WORK/dl"
for k in "${SIZE_KEYS[@]}"; do
    run_ok "rclone copyto $k (download)" rc copyto "$R/$k" "$WORK/dl/out" &&
        assert_same_file "downloaded $k equals the source" "$FILES_DIR/${k#sizes/}" "$WORK/dl/out"
    rm -f "$WORK/dl/out"
done
i=0
for k in "${KEYS[@]}" top.txt; do
    i=$((i + 1))
    if [[ $k == top.txt ]]; then f="$FILES_DIR/top.txt"; else f="$(local_file_for_key "$k")"; fi
    run_to_file "rclone cat [$k]" "$WORK/dl/h$i" rc cat "$R/$k" &&
        assert_same_file "[$k] content equals the source" "$f" "$WORK/dl/h$i"
done
if run_ok "rclone md5sum sizes/ (ETags of single PUTs)" rc md5sum "$R/sizes"; then
    assert_eq "md5sum lines" "$(sort -k2 <<<"$OUT" | join_lines)" \
        "$(cd "$FILES_DIR" && md5sum 20mib.bin 5mib-minus-1.bin 5mib.bin empty.bin one.bin | sort -k2 | join_lines)"
fi
mkdir -p "$WORK/sizes-local"
cp "$FILES_DIR"/{empty,one,5mib-minus-1,5mib,20mib}.bin "$WORK/sizes-local/"
run_ok "rclone check (sizes + MD5) local dir against sizes/" rc check "$WORK/sizes-local" "$R/sizes"

step "ranged reads (rclone cat --offset/--count/--tail)"
big="$FILES_DIR/20mib.bin"
tail -c +1048577 "$big" | head -c 1048576 >"$WORK/dl/range.expected"
run_to_file "rclone cat --offset 1048576 --count 1048576" "$WORK/dl/range" \
    rc cat --offset 1048576 --count 1048576 "$R/sizes/20mib.bin" &&
    assert_same_file "range bytes equal the source slice" "$WORK/dl/range.expected" "$WORK/dl/range"
tail -c 100 "$big" >"$WORK/dl/tail.expected"
run_to_file "rclone cat --tail 100" "$WORK/dl/tail" rc cat --tail 100 "$R/sizes/20mib.bin" &&
    assert_same_file "tail bytes equal the source" "$WORK/dl/tail.expected" "$WORK/dl/tail"

step "server-side copy (CopyObject)"
run_ok "rclone copyto sizes/5mib.bin -> copies/5mib.bin (server-side)" rc copyto "$R/sizes/5mib.bin" "$R/copies/5mib.bin"
run_ok "rclone copyto copies/5mib.bin (download)" rc copyto "$R/copies/5mib.bin" "$WORK/dl/copy" &&
    assert_same_file "copy has the source's bytes" "$FILES_DIR/5mib.bin" "$WORK/dl/copy"
run_ok "rclone copyto -M top.txt -> copies/top.txt (server-side)" rc copyto -M "$R/top.txt" "$R/copies/top.txt"
if run_ok "rclone lsjson -M copies/top.txt" rc lsjson -M "$R/copies/top.txt"; then
    assert_eq "copied content-type" "$(jq -r '.[0].MimeType' <<<"$OUT")" "text/plain; charset=utf-8"
    assert_eq "copied x-amz-meta-color" "$(jq -r '.[0].Metadata.color' <<<"$OUT")" "blue"
fi
run_ok "rclone copyto [hostile/é/日本語.txt] -> [copies/é 日本 + copy.txt]" \
    rc copyto "$R/hostile/é/日本語.txt" "$R/copies/é 日本 + copy.txt"
run_to_file "rclone cat [copies/é 日本 + copy.txt]" "$WORK/dl/hcopy" rc cat "$R/copies/é 日本 + copy.txt" &&
    assert_same_file "hostile copy has the source's bytes" "$(local_file_for_key "hostile/é/日本語.txt")" "$WORK/dl/hcopy"

step "delete: bucket not empty, single, everything, bucket"
run_err "rclone rmdir $R (non-empty) fails with BucketNotEmpty" BucketNotEmpty rc rmdir "$R"
run_ok "rclone deletefile top.txt" rc deletefile "$R/top.txt"
run_ok "rclone lsf of the root after the delete" rc lsf "$R" &&
    assert_eq "top.txt is gone" "$(join_lines <<<"$OUT")" "copies/|hostile/|sizes/"
run_ok "rclone delete $R (every object)" rc delete "$R"
run_ok "rclone lsf -R after delete" rc lsf -R "$R" && assert_eq "no key left" "$OUT" ""
run_ok "rclone rmdir $R (DeleteBucket)" rc rmdir "$R"
run_ok "rclone lsf t: after rmdir" rc lsf t: && assert_eq "no bucket left" "$OUT" ""
scenario_end
