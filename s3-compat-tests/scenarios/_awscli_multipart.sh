# shellcheck shell=bash
# The aws-cli multipart scenario, shared by multipart-awscli-v1.sh and multipart-awscli-v2.sh.
# Usage (after sourcing lib.sh): awscli_multipart_scenario PATH_TO_AWS MAJOR_VERSION

# cli ARGS...: the aws-cli under test against the tessera endpoint, JSON output.
cli() { "$AWS_BIN" --endpoint-url "$ENDPOINT" --output json "$@"; }

# upload_ids_of KEY: the UploadIds of KEY in the last list-multipart-uploads answer ($OUT).
upload_ids_of() { jq -r --arg k "$1" '[.Uploads[]? | select(.Key == $k) | .UploadId] | .[]' <<<"$OUT"; }

awscli_multipart_scenario() {
    AWS_BIN="$1"
    local major="$2" k id i etag
    export AWS_PAGER=""
    local MiB=$((1024 * 1024))

    step "client: $AWS_BIN"
    run_ok "$AWS_BIN --version runs" "$AWS_BIN" --version
    log "  version: $OUT$ERR"
    assert_contains "it is aws-cli v$major" "$OUT$ERR" "aws-cli/$major."
    # The defaults are what is tested: multipart_threshold and multipart_chunksize 8 MiB.
    "$AWS_BIN" configure set default.s3.addressing_style path
    run_ok "create-bucket $TEST_BUCKET" cli s3api create-bucket --bucket "$TEST_BUCKET"

    # ---------------------------------------------------------------- aws s3 cp
    step "aws s3 cp of 100 MiB up (default 8 MiB parts: 13 parts, 10 threads) and down (ranged GETs)"
    local big="$WORK/100mib.bin" key=big/100mib.bin
    make_random_file "$big" 100
    local want_etag
    want_etag="$(multipart_etag "$big" $((8 * MiB)))"
    log "  local multipart ETag with 8 MiB parts: $want_etag"
    run_ok "aws s3 cp 100 MiB -> s3://$TEST_BUCKET/$key" cli s3 cp "$big" "s3://$TEST_BUCKET/$key"
    if run_ok "head-object $key" cli s3api head-object --bucket "$TEST_BUCKET" --key "$key"; then
        assert_eq "ContentLength" "$(jq -r .ContentLength <<<"$OUT")" $((100 * MiB))
        etag="$(jq -r .ETag <<<"$OUT")"
        assert_eq "ETag ends with -13 (13 parts of 8 MiB)" "${etag##*-}" '13"'
        assert_eq "ETag is md5(part MD5s)-13, computed locally with 8 MiB chunks" "$etag" "$want_etag"
    fi
    if run_ok "head-object --checksum-mode ENABLED $key" \
        cli s3api head-object --bucket "$TEST_BUCKET" --key "$key" --checksum-mode ENABLED; then
        log "  checksum fields: $(jq -c '{ChecksumCRC32, ChecksumCRC32C, ChecksumCRC64NVME, ChecksumSHA1, ChecksumSHA256, ChecksumType}' <<<"$OUT")"
        if [[ $major == 1 ]]; then
            # aws-cli v1 on botocore >= 1.36 asks for CRC32 at CreateMultipartUpload (COMPOSITE).
            assert_eq "ChecksumType" "$(jq -r .ChecksumType <<<"$OUT")" COMPOSITE
            assert_eq "ChecksumCRC32 is the composite CRC32 of the part CRC32s, -13" \
                "$(jq -r .ChecksumCRC32 <<<"$OUT")" "$(composite_crc32 "$big" $((8 * MiB)))"
        fi
    fi
    mkdir -p "$WORK/dl"
    run_ok "aws s3 cp s3://$TEST_BUCKET/$key down (8 MiB ranged GETs)" cli s3 cp "s3://$TEST_BUCKET/$key" "$WORK/dl/100mib.bin" &&
        assert_same_file "100 MiB round trip (SHA-256)" "$big" "$WORK/dl/100mib.bin"
    rm -f "$WORK/dl/100mib.bin"

    step "get-object --part-number and --range on the multipart object"
    if run_ok "get-object --part-number 2" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key "$key" --part-number 2 "$WORK/dl/part2"; then
        assert_eq "part 2: PartsCount" "$(jq -r .PartsCount <<<"$OUT")" 13
        assert_eq "part 2: ContentLength" "$(jq -r .ContentLength <<<"$OUT")" $((8 * MiB))
        assert_eq "part 2: ContentRange" "$(jq -r .ContentRange <<<"$OUT")" "bytes $((8 * MiB))-$((16 * MiB - 1))/$((100 * MiB))"
        slice_of "$big" $((8 * MiB)) $((8 * MiB)) >"$WORK/dl/part2.expected"
        assert_same_file "part 2 bytes" "$WORK/dl/part2.expected" "$WORK/dl/part2"
    fi
    if run_ok "get-object --part-number 13 (the short last part)" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key "$key" --part-number 13 "$WORK/dl/part13"; then
        assert_eq "part 13: ContentLength" "$(jq -r .ContentLength <<<"$OUT")" $((4 * MiB))
        slice_of "$big" $((96 * MiB)) $((4 * MiB)) >"$WORK/dl/part13.expected"
        assert_same_file "part 13 bytes" "$WORK/dl/part13.expected" "$WORK/dl/part13"
    fi
    range_case() { # FIRST LAST: a range read, compared with the source slice
        local len=$(($2 - $1 + 1))
        slice_of "$big" "$1" "$len" >"$WORK/dl/range.expected"
        if run_ok "get-object --range bytes=$1-$2" \
            cli s3api get-object --bucket "$TEST_BUCKET" --key "$key" --range "bytes=$1-$2" "$WORK/dl/range"; then
            assert_same_file "range $1-$2 bytes" "$WORK/dl/range.expected" "$WORK/dl/range"
            assert_eq "range $1-$2 ContentRange" "$(jq -r .ContentRange <<<"$OUT")" "bytes $1-$2/$((100 * MiB))"
        fi
    }
    range_case $((8 * MiB - 1000)) $((8 * MiB + 999))      # across the part 1 / part 2 boundary
    range_case $((8 * MiB - 1)) $((24 * MiB))              # spans parts 1 to 4
    range_case $((100 * MiB - 100)) $((100 * MiB - 1))     # inside the last part
    run_err "get-object --part-number 14 (past the last part) fails with InvalidPartNumber" "InvalidPartNumber" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key "$key" --part-number 14 "$WORK/dl/x"

    # ---------------------------------------------------------------- s3api, step by step
    step "s3api: create-multipart-upload / upload-part (out of order) / list-parts / complete"
    local src="$FILES_DIR/20mib.bin" lkey="lowlevel/é parts+1.bin"
    slice_of "$src" 0 $((5 * MiB)) >"$WORK/p1"
    slice_of "$src" $((5 * MiB)) $((5 * MiB)) >"$WORK/p2"
    slice_of "$src" $((10 * MiB)) 123457 >"$WORK/p3"
    cat "$WORK/p1" "$WORK/p2" "$WORK/p3" >"$WORK/lowlevel.expected"
    id=""
    if run_ok "create-multipart-upload [$lkey] with Content-Type and metadata" \
        cli s3api create-multipart-upload --bucket "$TEST_BUCKET" --key "$lkey" \
        --content-type application/x-tessera-parts --metadata purpose=lowlevel; then
        id="$(jq -r .UploadId <<<"$OUT")"
        assert_eq "create answer names the key" "$(jq -r .Key <<<"$OUT")" "$lkey"
        log "  UploadId $id"
    fi
    if run_ok "list-multipart-uploads" cli s3api list-multipart-uploads --bucket "$TEST_BUCKET"; then
        assert_eq "list-multipart-uploads shows the new upload" "$(upload_ids_of "$lkey")" "$id"
    fi
    for i in 3 1 2; do
        if run_ok "upload-part $i ($(size_of "$WORK/p$i") B)" cli s3api upload-part --bucket "$TEST_BUCKET" \
            --key "$lkey" --upload-id "$id" --part-number "$i" --body "$WORK/p$i"; then
            assert_eq "part $i ETag is the quoted MD5 of the part" "$(jq -r .ETag <<<"$OUT")" "\"$(md5_of "$WORK/p$i")\""
        fi
    done
    local want_parts
    want_parts="$(for i in 1 2 3; do printf '%s %s "%s"\n' "$i" "$(size_of "$WORK/p$i")" "$(md5_of "$WORK/p$i")"; done | join_lines)"
    if run_ok "list-parts" cli s3api list-parts --bucket "$TEST_BUCKET" --key "$lkey" --upload-id "$id"; then
        assert_eq "list-parts: numbers, sizes, ETags" \
            "$(jq -r '.Parts[] | "\(.PartNumber) \(.Size) \(.ETag)"' <<<"$OUT" | join_lines)" "$want_parts"
    fi
    # --page-size 1: the CLI pages with max-parts=1 and part-number-marker.
    if run_ok "list-parts --page-size 1 (part-number-marker paging)" \
        cli s3api list-parts --bucket "$TEST_BUCKET" --key "$lkey" --upload-id "$id" --page-size 1; then
        assert_eq "paged list-parts: every part once, in order" \
            "$(jq -r '.Parts[] | "\(.PartNumber) \(.Size) \(.ETag)"' <<<"$OUT" | join_lines)" "$want_parts"
    fi
    jq -n --arg e1 "\"$(md5_of "$WORK/p1")\"" --arg e2 "\"$(md5_of "$WORK/p2")\"" --arg e3 "\"$(md5_of "$WORK/p3")\"" \
        '{Parts: [{PartNumber: 1, ETag: $e1}, {PartNumber: 2, ETag: $e2}, {PartNumber: 3, ETag: $e3}]}' >"$WORK/parts.json"
    if run_ok "complete-multipart-upload" cli s3api complete-multipart-upload --bucket "$TEST_BUCKET" \
        --key "$lkey" --upload-id "$id" --multipart-upload "file://$WORK/parts.json"; then
        etag="$(multipart_etag "$WORK/lowlevel.expected" $((5 * MiB)))"
        assert_eq "complete: ETag is md5(part MD5s)-3" "$(jq -r .ETag <<<"$OUT")" "$etag"
        assert_eq "complete: Key" "$(jq -r .Key <<<"$OUT")" "$lkey"
    fi
    if run_ok "list-multipart-uploads after complete" cli s3api list-multipart-uploads --bucket "$TEST_BUCKET"; then
        assert_eq "the completed upload is no longer listed" "$(upload_ids_of "$lkey")" ""
    fi
    if run_ok "head-object [$lkey]" cli s3api head-object --bucket "$TEST_BUCKET" --key "$lkey"; then
        assert_eq "ContentLength" "$(jq -r .ContentLength <<<"$OUT")" "$(size_of "$WORK/lowlevel.expected")"
        assert_eq "ContentType from create-multipart-upload" "$(jq -r .ContentType <<<"$OUT")" application/x-tessera-parts
        assert_eq "Metadata from create-multipart-upload" "$(jq -c .Metadata <<<"$OUT")" '{"purpose":"lowlevel"}'
        assert_eq "ETag" "$(jq -r .ETag <<<"$OUT")" "$etag"
    fi
    run_ok "get-object [$lkey]" cli s3api get-object --bucket "$TEST_BUCKET" --key "$lkey" "$WORK/dl/lowlevel" &&
        assert_same_file "completed object = part 1 + part 2 + part 3" "$WORK/lowlevel.expected" "$WORK/dl/lowlevel"
    # A retry of a Complete that succeeded answers the same result, as S3 does.
    run_ok "complete-multipart-upload again (a retry) succeeds" \
        cli s3api complete-multipart-upload --bucket "$TEST_BUCKET" --key "$lkey" --upload-id "$id" \
        --multipart-upload "file://$WORK/parts.json" &&
        assert_eq "the retry's ETag" "$(jq -r .ETag <<<"$OUT")" "$(multipart_etag "$WORK/lowlevel.expected" $((5 * MiB)))"

    step "s3api: upload-part-copy with --copy-source-range, then complete"
    id=""
    run_ok "create-multipart-upload copied/mixed.bin" \
        cli s3api create-multipart-upload --bucket "$TEST_BUCKET" --key copied/mixed.bin &&
        id="$(jq -r .UploadId <<<"$OUT")"
    if run_ok "upload-part-copy part 1 <- $key bytes=$((90 * MiB))-$((96 * MiB - 1))" \
        cli s3api upload-part-copy --bucket "$TEST_BUCKET" --key copied/mixed.bin --upload-id "$id" \
        --part-number 1 --copy-source "$TEST_BUCKET/$key" --copy-source-range "bytes=$((90 * MiB))-$((96 * MiB - 1))"; then
        slice_of "$big" $((90 * MiB)) $((6 * MiB)) >"$WORK/c1"
        assert_eq "copied part ETag is the MD5 of the range" "$(jq -r .CopyPartResult.ETag <<<"$OUT")" "\"$(md5_of "$WORK/c1")\""
    fi
    run_ok "upload-part 2 (1 byte)" cli s3api upload-part --bucket "$TEST_BUCKET" --key copied/mixed.bin \
        --upload-id "$id" --part-number 2 --body "$FILES_DIR/one.bin"
    jq -n --arg e1 "\"$(md5_of "$WORK/c1")\"" --arg e2 "\"$(md5_of "$FILES_DIR/one.bin")\"" \
        '{Parts: [{PartNumber: 1, ETag: $e1}, {PartNumber: 2, ETag: $e2}]}' >"$WORK/copy-parts.json"
    run_ok "complete-multipart-upload copied/mixed.bin" cli s3api complete-multipart-upload --bucket "$TEST_BUCKET" \
        --key copied/mixed.bin --upload-id "$id" --multipart-upload "file://$WORK/copy-parts.json"
    cat "$WORK/c1" "$FILES_DIR/one.bin" >"$WORK/mixed.expected"
    run_ok "get-object copied/mixed.bin" cli s3api get-object --bucket "$TEST_BUCKET" --key copied/mixed.bin "$WORK/dl/mixed" &&
        assert_same_file "copied range + uploaded byte" "$WORK/mixed.expected" "$WORK/dl/mixed"

    step "s3api: abort-multipart-upload; the upload disappears; NoSuchUpload afterwards"
    local akey="aborted/never.bin"
    id=""
    run_ok "create-multipart-upload $akey" cli s3api create-multipart-upload --bucket "$TEST_BUCKET" --key "$akey" &&
        id="$(jq -r .UploadId <<<"$OUT")"
    run_ok "upload-part 1 (5 MiB)" cli s3api upload-part --bucket "$TEST_BUCKET" --key "$akey" \
        --upload-id "$id" --part-number 1 --body "$WORK/p1"
    if run_ok "list-multipart-uploads" cli s3api list-multipart-uploads --bucket "$TEST_BUCKET"; then
        assert_eq "the upload is listed before abort" "$(upload_ids_of "$akey")" "$id"
    fi
    run_ok "abort-multipart-upload" cli s3api abort-multipart-upload --bucket "$TEST_BUCKET" --key "$akey" --upload-id "$id"
    if run_ok "list-multipart-uploads after abort" cli s3api list-multipart-uploads --bucket "$TEST_BUCKET"; then
        # An empty paginated answer prints nothing at all, hence jq -s.
        assert_eq "no upload left at all" "$(jq -s -c '[.[].Uploads[]?]' <<<"$OUT")" "[]"
    fi
    run_err "list-parts after abort fails with NoSuchUpload" "(NoSuchUpload)" \
        cli s3api list-parts --bucket "$TEST_BUCKET" --key "$akey" --upload-id "$id"
    run_err "upload-part after abort fails with NoSuchUpload" "(NoSuchUpload)" \
        cli s3api upload-part --bucket "$TEST_BUCKET" --key "$akey" --upload-id "$id" --part-number 2 --body "$WORK/p3"
    jq -n --arg e1 "\"$(md5_of "$WORK/p1")\"" '{Parts: [{PartNumber: 1, ETag: $e1}]}' >"$WORK/abort-parts.json"
    run_err "complete-multipart-upload after abort fails with NoSuchUpload" "(NoSuchUpload)" \
        cli s3api complete-multipart-upload --bucket "$TEST_BUCKET" --key "$akey" --upload-id "$id" \
        --multipart-upload "file://$WORK/abort-parts.json"
    run_err "abort-multipart-upload again fails with NoSuchUpload" "(NoSuchUpload)" \
        cli s3api abort-multipart-upload --bucket "$TEST_BUCKET" --key "$akey" --upload-id "$id"
    run_err "head-object $akey: 404 (nothing was created)" "(404)" \
        cli s3api head-object --bucket "$TEST_BUCKET" --key "$akey"

    step "cleanup"
    for k in "$key" "$lkey" copied/mixed.bin; do
        run_ok "delete-object [$k]" cli s3api delete-object --bucket "$TEST_BUCKET" --key "$k"
    done
    if run_ok "list-objects-v2" cli s3api list-objects-v2 --bucket "$TEST_BUCKET"; then
        assert_eq "bucket is empty" "$(jq -s -c '[.[].Contents[]?.Key]' <<<"$OUT")" "[]"
    fi
    run_ok "delete-bucket $TEST_BUCKET" cli s3api delete-bucket --bucket "$TEST_BUCKET"
}
