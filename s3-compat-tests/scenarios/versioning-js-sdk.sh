#!/usr/bin/env bash
# AWS SDK for JavaScript v3 (@aws-sdk/client-s3, npm) on a versioned bucket:
# PutBucketVersioning Enabled, two PutObject versions (a Buffer body, then a file
# stream sent aws-chunked), GetObject/HeadObject by VersionId (SHA-256), a delete
# marker (NoSuchKey, 405 by the marker's id, x-amz-delete-marker), ListObjectVersions
# (Versions, DeleteMarkers, IsLatest; paged by MaxKeys=1), deleting the marker by
# its VersionId restores the object, and the cleanup of every version and marker.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin versioning-js-sdk
log "node $(node --version), @aws-sdk/client-s3 $(cd "$S3T_DIR/js" && node -p 'require("@aws-sdk/client-s3/package.json").version')"
run_program "versioning-js-sdk scenario" node "$S3T_DIR/js/versioning.mjs"
scenario_end
