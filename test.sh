#!/usr/bin/env bash
# The one command that runs every test: formatting, lints, unit and
# integration tests, then the S3 compatibility suite with real clients.
set -euo pipefail
cd "$(dirname "$0")"

echo "== cargo fmt"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== clients the cargo tests run (aws-cli v2, boto3, curl, openssl)"
S3T_INSTALL_ONLY=1 s3-compat-tests/run.sh awscli-v2 boto3

echo "== PostgreSQL test cluster (scripts/pg-test-cluster.sh)"
# Exports TESSERA_TEST_PG for tests/pg_meta.rs; its EXIT trap stops and
# removes the cluster (chained before any trap set earlier).
source scripts/pg-test-cluster.sh

echo "== cargo tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked
else
    cargo test --locked
fi

echo "== the S3 integration tests again, every server a gateway over PostgreSQL"
# TESSERA_TEST_META=postgres (tests/common/mod.rs): every test file but
# those about redb itself (tests of meta.redb in these files say so and
# return) and the PostgreSQL-only ones (gateways, pg_meta), which ran above;
# docs/scale-out.md says which files are left out and why.
pg_suite=(s3_api multipart versioning tagging cors lifecycle limits security credentials fuzz instant console transfer backup disk_full
    dedup access_control users stalled tls kill_loop crash operations open_files corruption soak)
# The soak's load lasts 30 s here (75 s in the redb run above).
if cargo nextest --version >/dev/null 2>&1; then
    TESSERA_TEST_META=postgres TESSERA_SOAK_SECS=30 cargo nextest run --locked "${pg_suite[@]/#/--test=}"
else
    TESSERA_TEST_META=postgres TESSERA_SOAK_SECS=30 cargo test --locked "${pg_suite[@]/#/--test=}"
fi
pg_test_cluster_stop

echo "== S3 compatibility tests (s3-compat-tests/run.sh)"
s3-compat-tests/run.sh

# Long mode: the container image (scripts/container-test.sh: builds the Dockerfile
# with podman from locally made base images, runs it, uses it with aws-cli; 15-20
# minutes on 2 cores the first time, about 35 s once its images are kept, so not
# in every run). docs/container.md.
if [[ ${TESSERA_LONG_TESTS:-} == 1 ]]; then
    echo "== container image (scripts/container-test.sh)"
    scripts/container-test.sh
fi
