# shellcheck shell=bash
# The aws-cli scenario, shared by awscli-v1.sh and awscli-v2.sh.
# Usage (after sourcing lib.sh): awscli_scenario PATH_TO_AWS MAJOR_VERSION

# cli ARGS...: the aws-cli under test against the tessera endpoint, JSON output.
cli() { "$AWS_BIN" --endpoint-url "$ENDPOINT" --output json "$@"; }

# keys_of JSON_FILE: the Contents keys of a list-objects(-v2) answer, one per line.
contents_of() { jq -r '[.Contents[]?.Key] | .[]' <<<"$OUT"; }
prefixes_of() { jq -r '[.CommonPrefixes[]?.Prefix] | .[]' <<<"$OUT"; }

# expect_listing LABEL EXPECTED_KEYS EXPECTED_PREFIXES (each '|'-joined) CMD...
expect_listing() {
    local label="$1" keys="$2" prefixes="$3"
    shift 3
    if run_ok "$label: request succeeds" "$@"; then
        assert_eq "$label: keys" "$(contents_of | join_lines)" "$keys"
        assert_eq "$label: common prefixes" "$(prefixes_of | join_lines)" "$prefixes"
    fi
}

awscli_scenario() {
    AWS_BIN="$1"
    local major="$2" k f i
    export AWS_PAGER=""

    step "client: $AWS_BIN"
    run_ok "$AWS_BIN --version runs" "$AWS_BIN" --version
    log "  version: $OUT$ERR"
    assert_contains "it is aws-cli v$major" "$OUT$ERR" "aws-cli/$major."
    # No multipart (not implemented yet): a threshold above the largest file.
    "$AWS_BIN" configure set default.s3.multipart_threshold 64MB
    "$AWS_BIN" configure set default.s3.multipart_chunksize 64MB
    "$AWS_BIN" configure set default.s3.addressing_style path

    step "buckets: create, errors, list, location"
    run_ok "create-bucket $TEST_BUCKET" cli s3api create-bucket --bucket "$TEST_BUCKET"
    run_ok "head-bucket $TEST_BUCKET" cli s3api head-bucket --bucket "$TEST_BUCKET"
    run_err "create-bucket $BAD_BUCKET fails with InvalidBucketName" "(InvalidBucketName)" \
        cli s3api create-bucket --bucket "$BAD_BUCKET"
    run_ok "create-bucket $TEST_BUCKET again succeeds (us-east-1's answer for your own bucket, as S3)" \
        cli s3api create-bucket --bucket "$TEST_BUCKET"
    if run_ok "list-buckets" cli s3api list-buckets; then
        assert_eq "list-buckets names exactly [$TEST_BUCKET]" \
            "$(jq -r '[.Buckets[].Name] | join("|")' <<<"$OUT")" "$TEST_BUCKET"
    fi
    if run_ok "get-bucket-location" cli s3api get-bucket-location --bucket "$TEST_BUCKET"; then
        assert_eq "LocationConstraint is empty for us-east-1" \
            "$(jq -r '.LocationConstraint // ""' <<<"$OUT")" ""
    fi

    step "put-object: sizes 0 B, 1 B, 5 MiB - 1, 5 MiB, 20 MiB (single PUT each)"
    for k in "${SIZE_KEYS[@]}"; do
        f="$FILES_DIR/${k#sizes/}"
        if run_ok "put-object $k ($(size_of "$f") B)" \
            cli s3api put-object --bucket "$TEST_BUCKET" --key "$k" --body "$f"; then
            assert_eq "ETag of $k is the quoted MD5" "$(jq -r .ETag <<<"$OUT")" "\"$(md5_of "$f")\""
        fi
    done

    step "put-object with content type and user metadata"
    run_ok "put-object top.txt with Content-Type and x-amz-meta-*" \
        cli s3api put-object --bucket "$TEST_BUCKET" --key top.txt --body "$FILES_DIR/top.txt" \
        --content-type "text/plain; charset=utf-8" \
        --metadata '{"color":"blue","purpose":"compat test"}'

    step "put-object: hostile keys and a directory marker"
    for k in "${HOSTILE_KEYS[@]}"; do
        f="$(local_file_for_key "$k")"
        if run_ok "put-object key [$k]" cli s3api put-object --bucket "$TEST_BUCKET" --key "$k" --body "$f"; then
            assert_eq "ETag of [$k]" "$(jq -r .ETag <<<"$OUT")" "\"$(md5_of "$f")\""
        fi
    done
    run_ok "put-object directory marker [$MARKER_KEY] (no body)" \
        cli s3api put-object --bucket "$TEST_BUCKET" --key "$MARKER_KEY"

    step "head-object: sizes, ETags, content type, metadata"
    for k in "${SIZE_KEYS[@]}"; do
        f="$FILES_DIR/${k#sizes/}"
        if run_ok "head-object $k" cli s3api head-object --bucket "$TEST_BUCKET" --key "$k"; then
            assert_eq "ContentLength of $k" "$(jq -r .ContentLength <<<"$OUT")" "$(size_of "$f")"
            assert_eq "ETag of $k" "$(jq -r .ETag <<<"$OUT")" "\"$(md5_of "$f")\""
        fi
    done
    if run_ok "head-object top.txt" cli s3api head-object --bucket "$TEST_BUCKET" --key top.txt; then
        assert_eq "ContentType of top.txt" "$(jq -r .ContentType <<<"$OUT")" "text/plain; charset=utf-8"
        assert_eq "Metadata of top.txt" "$(jq -c -S .Metadata <<<"$OUT")" \
            '{"color":"blue","purpose":"compat test"}'
    fi
    if run_ok "head-object [$MARKER_KEY]" cli s3api head-object --bucket "$TEST_BUCKET" --key "$MARKER_KEY"; then
        assert_eq "ContentLength of [$MARKER_KEY]" "$(jq -r .ContentLength <<<"$OUT")" 0
    fi
    k="hostile/é/日本語.txt"
    if run_ok "head-object [$k]" cli s3api head-object --bucket "$TEST_BUCKET" --key "$k"; then
        assert_eq "ContentLength of [$k]" "$(jq -r .ContentLength <<<"$OUT")" \
            "$(size_of "$(local_file_for_key "$k")")"
    fi

    step "list-objects-v2 / list-objects: exact keys, sizes, prefixes, delimiters, paging"
    local all_keys expected_sizes
    all_keys="$({ printf '%s\n' top.txt "$MARKER_KEY" "${SIZE_KEYS[@]}" "${HOSTILE_KEYS[@]}"; } | sorted_lines | join_lines)"
    expected_sizes="$(
        {
            printf 'top.txt\t%s\n' "$(size_of "$FILES_DIR/top.txt")"
            printf '%s\t0\n' "$MARKER_KEY"
            for k in "${SIZE_KEYS[@]}"; do printf '%s\t%s\n' "$k" "$(size_of "$FILES_DIR/${k#sizes/}")"; done
            for k in "${HOSTILE_KEYS[@]}"; do printf '%s\t%s\n' "$k" "$(size_of "$(local_file_for_key "$k")")"; done
        } | sorted_lines | join_lines
    )"
    if run_ok "list-objects-v2 (all keys)" cli s3api list-objects-v2 --bucket "$TEST_BUCKET"; then
        assert_eq "list-objects-v2: every key, in byte order" "$(contents_of | join_lines)" "$all_keys"
        assert_eq "list-objects-v2: every size" \
            "$(jq -r '.Contents[]? | "\(.Key)\t\(.Size)"' <<<"$OUT" | join_lines)" "$expected_sizes"
    fi
    expect_listing "list-objects-v2 paged by 2 (continuation tokens)" "$all_keys" "" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --page-size 2
    expect_listing "list-objects (v1) paged by 3 (markers)" "$all_keys" "" \
        cli s3api list-objects --bucket "$TEST_BUCKET" --page-size 3
    expect_listing "list-objects-v2 delimiter / at the root" "top.txt" "../|/|dir/|hostile/|sizes/" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --delimiter /
    expect_listing "list-objects (v1) delimiter / at the root, paged by 2" "top.txt" \
        "../|/|dir/|hostile/|sizes/" \
        cli s3api list-objects --bucket "$TEST_BUCKET" --delimiter / --page-size 2
    expect_listing "list-objects-v2 prefix hostile/ delimiter /" \
        'hostile/amp&ersand.txt|hostile/percent%20literal.txt|hostile/plus+sign.txt|hostile/quote".txt|hostile/with space.txt' \
        "hostile/a/|hostile/é/" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --prefix hostile/ --delimiter /
    expect_listing "list-objects-v2 prefix hostile/a/ delimiter /" "" "hostile/a//" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --prefix hostile/a/ --delimiter /
    expect_listing "list-objects-v2 prefix hostile/é/ (unicode prefix)" "hostile/é/日本語.txt" "" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --prefix "hostile/é/"
    expect_listing "list-objects-v2 prefix dir/ delimiter / (the marker itself)" "dir/" "" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --prefix dir/ --delimiter /
    expect_listing "list-objects-v2 prefix sizes/" \
        "sizes/20mib.bin|sizes/5mib-minus-1.bin|sizes/5mib.bin|sizes/empty.bin|sizes/one.bin" "" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --prefix sizes/
    expect_listing "list-objects-v2 prefix nothing/ (no match)" "" "" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET" --prefix nothing/

    step "get-object: every object, SHA-256 compared with the source"
    mkdir -p "$WORK/dl"
    for k in "${SIZE_KEYS[@]}"; do
        f="$FILES_DIR/${k#sizes/}"
        run_ok "get-object $k" cli s3api get-object --bucket "$TEST_BUCKET" --key "$k" "$WORK/dl/out" &&
            assert_same_file "downloaded $k equals the source" "$f" "$WORK/dl/out"
        rm -f "$WORK/dl/out"
    done
    i=0
    for k in "${HOSTILE_KEYS[@]}" top.txt; do
        if [[ $k == top.txt ]]; then f="$FILES_DIR/top.txt"; else f="$(local_file_for_key "$k")"; fi
        i=$((i + 1))
        run_ok "get-object [$k]" cli s3api get-object --bucket "$TEST_BUCKET" --key "$k" "$WORK/dl/h$i" &&
            assert_same_file "downloaded [$k] equals the source" "$f" "$WORK/dl/h$i"
    done
    if run_ok "get-object top.txt (headers)" cli s3api get-object --bucket "$TEST_BUCKET" --key top.txt "$WORK/dl/top"; then
        assert_eq "GET Content-Type of top.txt" "$(jq -r .ContentType <<<"$OUT")" "text/plain; charset=utf-8"
        assert_eq "GET metadata color of top.txt" "$(jq -r .Metadata.color <<<"$OUT")" "blue"
    fi

    step "get-object --range"
    local big="$FILES_DIR/20mib.bin"
    range_case() { # RANGE FIRST LAST (inclusive, resolved)
        local len=$(($3 - $2 + 1))
        tail -c +$(($2 + 1)) "$big" | head -c "$len" >"$WORK/dl/range.expected"
        if run_ok "get-object sizes/20mib.bin --range $1" \
            cli s3api get-object --bucket "$TEST_BUCKET" --key sizes/20mib.bin --range "$1" "$WORK/dl/range"; then
            assert_same_file "range $1 bytes" "$WORK/dl/range.expected" "$WORK/dl/range"
            assert_eq "range $1 ContentRange" "$(jq -r .ContentRange <<<"$OUT")" "bytes $2-$3/20971520"
            assert_eq "range $1 ContentLength" "$(jq -r .ContentLength <<<"$OUT")" "$len"
        fi
    }
    range_case "bytes=1048576-2097151" 1048576 2097151
    range_case "bytes=0-0" 0 0
    range_case "bytes=-100" 20971420 20971519
    range_case "bytes=20971000-" 20971000 20971519
    range_case "bytes=20971000-99999999" 20971000 20971519
    run_err "range bytes=0-0 on the empty object fails with InvalidRange" "(InvalidRange)" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key sizes/empty.bin --range bytes=0-0 "$WORK/dl/x"
    run_err "range beyond the end fails with InvalidRange" "(InvalidRange)" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key sizes/one.bin --range bytes=5-10 "$WORK/dl/x"

    step "copy-object: bytes, ETag, metadata (COPY and REPLACE), hostile source key"
    if run_ok "copy-object sizes/5mib.bin -> copies/5mib.bin" \
        cli s3api copy-object --bucket "$TEST_BUCKET" --key copies/5mib.bin --copy-source "$TEST_BUCKET/sizes/5mib.bin"; then
        assert_eq "copy result ETag" "$(jq -r .CopyObjectResult.ETag <<<"$OUT")" "\"$(md5_of "$FILES_DIR/5mib.bin")\""
    fi
    run_ok "get-object copies/5mib.bin" cli s3api get-object --bucket "$TEST_BUCKET" --key copies/5mib.bin "$WORK/dl/copy" &&
        assert_same_file "copy has the source's bytes" "$FILES_DIR/5mib.bin" "$WORK/dl/copy"
    run_ok "copy-object top.txt -> copies/top.txt (metadata directive COPY)" \
        cli s3api copy-object --bucket "$TEST_BUCKET" --key copies/top.txt --copy-source "$TEST_BUCKET/top.txt"
    if run_ok "head-object copies/top.txt" cli s3api head-object --bucket "$TEST_BUCKET" --key copies/top.txt; then
        assert_eq "copied ContentType" "$(jq -r .ContentType <<<"$OUT")" "text/plain; charset=utf-8"
        assert_eq "copied Metadata" "$(jq -c -S .Metadata <<<"$OUT")" '{"color":"blue","purpose":"compat test"}'
    fi
    run_ok "copy-object top.txt -> copies/top-replaced.txt (metadata directive REPLACE)" \
        cli s3api copy-object --bucket "$TEST_BUCKET" --key copies/top-replaced.txt \
        --copy-source "$TEST_BUCKET/top.txt" --metadata-directive REPLACE \
        --content-type application/x-tessera-test --metadata '{"color":"green"}'
    if run_ok "head-object copies/top-replaced.txt" cli s3api head-object --bucket "$TEST_BUCKET" --key copies/top-replaced.txt; then
        assert_eq "replaced ContentType" "$(jq -r .ContentType <<<"$OUT")" "application/x-tessera-test"
        assert_eq "replaced Metadata" "$(jq -c -S .Metadata <<<"$OUT")" '{"color":"green"}'
        assert_eq "replaced copy ContentLength" "$(jq -r .ContentLength <<<"$OUT")" "$(size_of "$FILES_DIR/top.txt")"
    fi
    k="hostile/é/日本語.txt"
    run_ok "copy-object [$k] -> [copies/é 日本 + copy.txt]" \
        cli s3api copy-object --bucket "$TEST_BUCKET" --key "copies/é 日本 + copy.txt" --copy-source "$TEST_BUCKET/$k"
    run_ok "get-object [copies/é 日本 + copy.txt]" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key "copies/é 日本 + copy.txt" "$WORK/dl/hcopy" &&
        assert_same_file "hostile copy has the source's bytes" "$(local_file_for_key "$k")" "$WORK/dl/hcopy"

    step "high-level aws s3 commands (cp up/down without multipart, ls)"
    run_ok "aws s3 cp 20 MiB up (threshold 64MB: one PutObject)" \
        cli s3 cp "$big" "s3://$TEST_BUCKET/highlevel/20mib.bin"
    run_ok "aws s3 cp 20 MiB down" cli s3 cp "s3://$TEST_BUCKET/highlevel/20mib.bin" "$WORK/dl/hl" &&
        assert_same_file "aws s3 cp round trip" "$big" "$WORK/dl/hl"
    if run_ok "aws s3 ls s3://$TEST_BUCKET/hostile/" cli s3 ls "s3://$TEST_BUCKET/hostile/"; then
        assert_eq "aws s3 ls names" "$(awk '{ if ($1 == "PRE") print "PRE " $2; else { $1=$2=$3=""; sub(/^ +/, ""); print } }' <<<"$OUT" | join_lines)" \
            'PRE a/|PRE é/|amp&ersand.txt|percent%20literal.txt|plus+sign.txt|quote".txt|with space.txt'
    fi
    run_ok "aws s3 rm highlevel/20mib.bin" cli s3 rm "s3://$TEST_BUCKET/highlevel/20mib.bin"

    step "delete: bucket not empty, single, missing key, batch, bucket"
    run_err "delete-bucket of a non-empty bucket fails with BucketNotEmpty" "(BucketNotEmpty)" \
        cli s3api delete-bucket --bucket "$TEST_BUCKET"
    run_ok "delete-object top.txt" cli s3api delete-object --bucket "$TEST_BUCKET" --key top.txt
    run_err "head-object top.txt after delete: 404" "(404)" \
        cli s3api head-object --bucket "$TEST_BUCKET" --key top.txt
    run_err "get-object top.txt after delete: NoSuchKey" "(NoSuchKey)" \
        cli s3api get-object --bucket "$TEST_BUCKET" --key top.txt "$WORK/dl/gone"
    run_ok "delete-object of a missing key succeeds (204)" \
        cli s3api delete-object --bucket "$TEST_BUCKET" --key no/such/key
    run_ok "delete-object [/leading-slash.txt]" cli s3api delete-object --bucket "$TEST_BUCKET" --key /leading-slash.txt
    local remaining
    remaining="$({ printf '%s\n' "$MARKER_KEY" "${SIZE_KEYS[@]}" "${HOSTILE_KEYS[@]}" copies/5mib.bin copies/top.txt \
        copies/top-replaced.txt "copies/é 日本 + copy.txt"; } | grep -vx /leading-slash.txt | sorted_lines)"
    jq -R . <<<"$remaining" | jq -s '{Objects: map({Key: .}), Quiet: false}' >"$WORK/delete.json"
    if run_ok "delete-objects of the $(wc -l <<<"$remaining") remaining keys" \
        cli s3api delete-objects --bucket "$TEST_BUCKET" --delete "file://$WORK/delete.json"; then
        assert_eq "delete-objects: every key reported Deleted" \
            "$(jq -r '.Deleted[]?.Key' <<<"$OUT" | sorted_lines | join_lines)" "$(join_lines <<<"$remaining")"
        assert_eq "delete-objects: no Errors" "$(jq -c '.Errors // []' <<<"$OUT")" "[]"
    fi
    expect_listing "list-objects-v2 after deleting everything" "" "" \
        cli s3api list-objects-v2 --bucket "$TEST_BUCKET"
    run_ok "delete-bucket $TEST_BUCKET" cli s3api delete-bucket --bucket "$TEST_BUCKET"
    run_err "head-bucket after delete: 404" "(404)" cli s3api head-bucket --bucket "$TEST_BUCKET"
    if run_ok "list-buckets after delete" cli s3api list-buckets; then
        assert_eq "no bucket left" "$(jq -r '[.Buckets[]?.Name] | join("|")' <<<"$OUT")" ""
    fi
}
