#!/usr/bin/env bash
# POST Object (browser form uploads): boto3's generate_presigned_post (SigV4
# and SigV2) posted with requests; policy conditions, redirects, checksums and
# every violation refused with nothing stored; a form signed by another user
# (made with `tessera user add`) is refused on a bucket they may not write.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

scenario_begin post-object
if [[ -z "${S3_COMPAT_ENDPOINT:-}" ]]; then
    step "make the user mallory: tessera user add mallory --data DIR --json (server running)"
    if run_ok "tessera user add mallory --json" env TESSERA_ACCESS_KEY="$TEST_ACCESS_KEY" \
        TESSERA_SECRET_KEY="$TEST_SECRET_KEY" "$TESSERA_BIN" user add mallory --data "$WORK/data" --json; then
        printf '%s\n' "$OUT" >"$WORK/mallory.json"
        export POST_OTHER_USER_FILE="$WORK/mallory.json"
    fi
fi
run_program "post-object scenario" python3 "$S3T_DIR/py/post_object_scenario.py"
scenario_end
