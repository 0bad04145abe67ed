#!/usr/bin/env bash
# boto3 object and bucket tagging: x-amz-tagging on PutObject, CreateMultipartUpload
# and CopyObject (TaggingDirective COPY/REPLACE); Get/Put/DeleteObjectTagging and
# x-amz-tagging-count; the limits (10 tags, unique keys, 128/256 characters);
# per-version tags on a versioned bucket; Get/Put/DeleteBucketTagging
# (NoSuchTagSet); NoSuchKey for a missing key.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin tagging-boto3
run_program "tagging-boto3 scenario" python3 "$S3T_DIR/py/tagging_boto3_scenario.py"
scenario_end
