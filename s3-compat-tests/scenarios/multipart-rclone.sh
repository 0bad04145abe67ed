#!/usr/bin/env bash
# rclone (Debian package) multipart: a 100 MiB upload in 5 MiB chunks with 4
# concurrent parts, checked with 'rclone check', md5sum and the ETag; a
# multi-thread download (4 concurrent ranged GETs); and unfinished uploads seen
# by 'rclone backend list-multipart-uploads' and removed by 'rclone backend
# cleanup -o max-age=0' (verified with aws-cli v2 list-multipart-uploads).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin multipart-rclone
rclone_env
R="t:$TEST_BUCKET"
MiB=$((1024 * 1024))
# rclone's aws-sdk-go refuses AWS_CA_BUNDLE on its custom transport: unset them all.
rc() { without_ca_vars rclone --config "$WORK/rclone.conf" --low-level-retries 1 --retries 1 "$@"; }
# s3api ARGS...: aws-cli v2, to look at what rclone did from another client.
s3api() { "${AWSCLI_V2:-/usr/bin/aws}" --endpoint-url "$ENDPOINT" --output json s3api "$@"; }
export AWS_PAGER=""

step "client"
run_ok "rclone version" rc version && log "  ${OUT%%$'\n'*}"
run_ok "rclone mkdir $R" rc mkdir "$R"

step "upload 100 MiB: --s3-chunk-size 5M --s3-upload-cutoff 5M --s3-upload-concurrency 4 (20 parts)"
mkdir -p "$WORK/up" "$WORK/dl"
big="$WORK/up/100mib.bin"
make_random_file "$big" 100
run_ok "rclone copy up/ -> $R/big/" rc copy -vv --s3-chunk-size 5M --s3-upload-cutoff 5M \
    --s3-upload-concurrency 4 "$WORK/up" "$R/big"
assert_contains "rclone logged a multipart upload" "$OUT$ERR" "multipart upload starting chunk"
if run_ok "head-object big/100mib.bin (aws-cli)" s3api head-object --bucket "$TEST_BUCKET" --key big/100mib.bin; then
    assert_eq "ContentLength" "$(jq -r .ContentLength <<<"$OUT")" $((100 * MiB))
    assert_eq "ETag is md5(part MD5s)-20 with 5 MiB chunks" "$(jq -r .ETag <<<"$OUT")" \
        "$(multipart_etag "$big" $((5 * MiB)))"
    # rclone keeps the whole-file MD5 in metadata, since a multipart ETag is not one.
    assert_eq "x-amz-meta-md5chksum (rclone's whole-file MD5, base64)" "$(jq -r .Metadata.md5chksum <<<"$OUT")" \
        "$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.md5(open(sys.argv[1], "rb").read()).digest()).decode())' "$big")"
fi
run_ok "rclone check up/ $R/big/ (sizes + MD5)" rc check "$WORK/up" "$R/big"
if run_ok "rclone md5sum $R/big/" rc md5sum "$R/big"; then
    assert_eq "md5sum of the multipart object" "$OUT" "$(md5_of "$big")  100mib.bin"
fi
if run_ok "rclone lsjson --hash $R/big/" rc lsjson --hash "$R/big"; then
    assert_eq "lsjson size" "$(jq -r '.[0].Size' <<<"$OUT")" $((100 * MiB))
fi

step "download: --multi-thread-streams 4 --multi-thread-cutoff 1M (concurrent ranged GETs)"
run_ok "rclone copy $R/big/ -> dl/" rc copy -vv --multi-thread-streams 4 --multi-thread-cutoff 1M "$R/big" "$WORK/dl"
assert_contains "rclone used a multi-thread copy with 4 streams" "$OUT$ERR" "multi-thread copy: stream 4/4"
assert_same_file "100 MiB multi-thread download (SHA-256)" "$big" "$WORK/dl/100mib.bin"
run_ok "rclone check dl/ $R/big/ --download (compares the bytes)" rc check --download "$WORK/dl" "$R/big"

step "unfinished uploads: list-multipart-uploads, cleanup"
id1="" id2=""
run_ok "create-multipart-upload pending/one.bin (aws-cli)" \
    s3api create-multipart-upload --bucket "$TEST_BUCKET" --key pending/one.bin && id1="$(jq -r .UploadId <<<"$OUT")"
run_ok "upload-part 1 of it" s3api upload-part --bucket "$TEST_BUCKET" --key pending/one.bin \
    --upload-id "$id1" --part-number 1 --body "$FILES_DIR/5mib.bin"
run_ok "create-multipart-upload pending/two.bin (aws-cli)" \
    s3api create-multipart-upload --bucket "$TEST_BUCKET" --key pending/two.bin && id2="$(jq -r .UploadId <<<"$OUT")"
if run_ok "rclone backend list-multipart-uploads $R" rc backend list-multipart-uploads "$R"; then
    assert_eq "rclone sees both unfinished uploads (key and id)" \
        "$(jq -r --arg b "$TEST_BUCKET" '.[$b][] | "\(.Key) \(.UploadId)"' <<<"$OUT" | sorted_lines | join_lines)" \
        "$(printf 'pending/one.bin %s\npending/two.bin %s\n' "$id1" "$id2" | sorted_lines | join_lines)"
fi
# The default max-age is 24 h: these uploads are younger, so nothing goes.
run_ok "rclone backend cleanup $R (default max-age 24h)" rc backend cleanup "$R"
if run_ok "list-multipart-uploads (aws-cli)" s3api list-multipart-uploads --bucket "$TEST_BUCKET"; then
    assert_eq "both uploads survive a 24 h cleanup" "$(jq -s -r '[.[].Uploads[]?.UploadId] | sort | join(" ")' <<<"$OUT")" \
        "$(printf '%s\n' "$id1" "$id2" | sort | paste -sd ' ')"
fi
run_ok "rclone backend cleanup -o max-age=0 $R" rc backend cleanup -o max-age=0 "$R"
if run_ok "list-multipart-uploads after cleanup (aws-cli)" s3api list-multipart-uploads --bucket "$TEST_BUCKET"; then
    # An empty paginated answer prints nothing at all, hence jq -s.
    assert_eq "no unfinished upload left" "$(jq -s -c '[.[].Uploads[]?]' <<<"$OUT")" "[]"
fi
run_err "list-parts of a cleaned-up upload fails with NoSuchUpload" "(NoSuchUpload)" \
    s3api list-parts --bucket "$TEST_BUCKET" --key pending/one.bin --upload-id "$id1"
if run_ok "rclone backend list-multipart-uploads $R after cleanup" rc backend list-multipart-uploads "$R"; then
    assert_eq "rclone sees no upload" "$(jq -c --arg b "$TEST_BUCKET" '.[$b] // []' <<<"$OUT")" "[]"
fi

step "cleanup"
run_ok "rclone purge $R" rc purge "$R"
run_ok "rclone lsf t:" rc lsf t: && assert_eq "no bucket left" "$OUT" ""
scenario_end
