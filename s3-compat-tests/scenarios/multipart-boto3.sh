#!/usr/bin/env bash
# boto3 multipart: upload_file (5 MiB parts, 4 threads, default CRC32), PartNumber
# GETs, download_file in concurrent ranged GETs, managed copy (UploadPartCopy),
# Complete errors, ListMultipartUploads paging, abort.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin multipart-boto3
run_program "multipart-boto3 scenario" python3 "$S3T_DIR/py/multipart_boto3_scenario.py"
scenario_end
