#!/usr/bin/env bash
# Builds the Dockerfile with podman, runs the image and uses it with aws-cli v2.
# The long-mode container test (docs/container.md); test.sh runs it when
# TESSERA_LONG_TESTS=1.
#
#   scripts/container-test.sh
#
# Checks: the image builds (the dependency layer is cached: a second build of the
# same sources is all cache), the binary in it is stripped, the image carries the
# HEALTHCHECK, the container serves on a published loopback port with a
# bind-mounted data folder owned by uid 10001, GET /_tessera/health/ready answers
# "ready", aws-cli v2 round-trips a small and a multipart object byte for byte, the
# HEALTHCHECK reports healthy, the objects survive a restart, and a data folder
# the container's user cannot write is refused with a message naming it.
# Prints "N passed, M failed" last; exits non-zero if any check failed.
#
# Base images: no container registry may be reachable (it is not on the project's
# machines), so by default the script makes its own: a Debian bookworm minbase
# tree by debootstrap, imported as localhost/tessera-local/debian:bookworm-slim,
# and a build image from it with gcc and this machine's Rust toolchain
# (`rustc --print sysroot`), localhost/tessera-local/rust:<rustc version>. Both
# are kept and reused. TESSERA_CONTAINER_BASES=public uses the Dockerfile's
# defaults (rust:1-bookworm, debian:bookworm-slim) from a registry instead.
#
# Environment:
#   TESSERA_CONTAINER_BASES   local (default) or public
#   TESSERA_CONTAINER_CACHE   where the debootstrap tree is kept (/var/tmp/tessera-container)
#   TESSERA_DEBIAN_MIRROR     debootstrap's mirror (default: debootstrap's own)
#   TESSERA_IMAGE             the tag built and tested (localhost/tessera:test)
#   TESSERA_CONTAINER_KEEP=1  leave the image and the build cache (the default); 0 removes the image
#   TESSERA_CONTAINER_SRC_REBUILD=1  also rebuild after a change under src/ (checks the
#                             dependency layer is reused; about 5 more minutes)
# shellcheck disable=SC2015 # `check && pass ... || fail ...`: pass always succeeds
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASES="${TESSERA_CONTAINER_BASES:-local}"
CACHE="${TESSERA_CONTAINER_CACHE:-/var/tmp/tessera-container}"
IMAGE="${TESSERA_IMAGE:-localhost/tessera:test}"
LOCAL_DEBIAN=localhost/tessera-local/debian:bookworm-slim
NAME="tessera-ctest-$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tessera-container.XXXXXX")"
passed=0
failed=0
started=$SECONDS

pass() { passed=$((passed + 1)); echo "PASS  $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }
finish() {
    echo
    echo "== container test took $((SECONDS - started)) s"
    echo "$passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
die() { # a step the rest depends on failed
    echo "FAIL  $*" >&2
    failed=$((failed + 1))
    finish || exit 1
}
cleanup() {
    podman rm -f -i -t 2 "$NAME" "$NAME-ro" "$NAME-cp" >/dev/null 2>&1 || true
    podman rmi "$IMAGE-src" >/dev/null 2>&1 || true
    [[ ${TESSERA_CONTAINER_KEEP:-1} == 0 ]] && podman rmi -f "$IMAGE" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- tools
need=()
# netavark is only recommended by podman: without it podman falls back to CNI,
# which this test has not been run with.
command -v podman >/dev/null || need+=(podman netavark aardvark-dns catatonit iptables)
command -v runc >/dev/null || need+=(runc)
[[ $BASES == local ]] && ! command -v debootstrap >/dev/null && need+=(debootstrap)
[[ -x /usr/bin/aws ]] || need+=(awscli)
command -v curl >/dev/null || need+=(curl)
command -v readelf >/dev/null || need+=(binutils)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "== apt-get install ${need[*]}"
    apt-get update -qq >"$WORK/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
            >>"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get install ${need[*]}"; }
fi

# ---- engine settings for this sandbox (a file of our own; /etc is not touched)
# crun refuses cgroup "hybrid" mode (v1 controllers with a v2 hierarchy beside
# them): "cgroups in hybrid mode not supported, drop all controllers from
# cgroupv2"; runc runs there. Without CAP_SYS_RESOURCE the runtime may not raise
# a limit, and podman's defaults (nofile 1048576, and nproc above what podman
# itself keeps) are refused with "setrlimit RLIMIT_NOFILE: Operation not
# permitted", so the containers get this shell's hard nofile limit and 4096 processes.
nofile="$(ulimit -Hn)"
[[ $nofile == unlimited ]] && nofile=1048576
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$WORK/containers.conf"
echo "== podman $(podman --version | awk '{print $3}'), runtime runc, storage $(podman info --format '{{.Store.GraphDriverName}}')"

# ---- base images
build_args=()
if [[ $BASES == local ]]; then
    if ! podman image exists "$LOCAL_DEBIAN"; then
        if [[ ! -x $CACHE/rootfs/bin/sh ]]; then
            echo "== debootstrap --variant=minbase bookworm $CACHE/rootfs"
            mkdir -p "$CACHE"
            rm -rf "$CACHE/rootfs.tmp"
            t=$SECONDS
            # shellcheck disable=SC2086 # the mirror is one word or none
            debootstrap --variant=minbase bookworm "$CACHE/rootfs.tmp" ${TESSERA_DEBIAN_MIRROR:-} \
                >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap"; }
            mv "$CACHE/rootfs.tmp" "$CACHE/rootfs"
            echo "   took $((SECONDS - t)) s"
        fi
        echo "== podman import $LOCAL_DEBIAN"
        # Slimmed as Debian's -slim images are: no apt caches or lists, man pages or translations.
        tar -C "$CACHE/rootfs" -c --exclude=./var/cache/apt/archives/'*.deb' --exclude=./var/cache/apt/'*.bin' \
            --exclude=./var/lib/apt/lists/'*_*' --exclude=./usr/share/man/'*' --exclude=./usr/share/info/'*' \
            --exclude=./usr/share/locale/'*' . |
            podman import -q --change 'CMD ["bash"]' - "$LOCAL_DEBIAN" >/dev/null ||
            die "podman import"
    fi
    sysroot="$(rustc --print sysroot)"
    rust_version="$(rustc --version | awk '{print $2}')"
    LOCAL_RUST="localhost/tessera-local/rust:$rust_version-bookworm"
    if ! podman image exists "$LOCAL_RUST"; then
        echo "== building $LOCAL_RUST (gcc, this machine's toolchain from $sysroot)"
        t=$SECONDS
        ctx="$WORK/rust-image"
        mkdir -p "$ctx/toolchain"
        for d in bin lib libexec etc; do
            [[ -d $sysroot/$d ]] || continue
            cp -al "$sysroot/$d" "$ctx/toolchain/" 2>/dev/null || cp -a "$sysroot/$d" "$ctx/toolchain/"
        done
        # The host's trust store: on machines whose registries are reached
        # through a proxy with its own CA, cargo in the container needs it too.
        cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
        cat >"$ctx/Containerfile" <<EOF
FROM $LOCAL_DEBIAN
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN cargo --version && rustc --version
EOF
        podman build --format docker -t "$LOCAL_RUST" "$ctx" >"$WORK/rust-image.log" 2>&1 ||
            { tail -30 "$WORK/rust-image.log" >&2; die "building $LOCAL_RUST"; }
        rm -rf "$ctx"
        echo "   took $((SECONDS - t)) s"
    fi
    build_args=(--build-arg "RUST_IMAGE=$LOCAL_RUST" --build-arg "RUNTIME_IMAGE=$LOCAL_DEBIAN")
fi

# ---- build
echo "== podman build --format docker -t $IMAGE ${build_args[*]} ."
t=$SECONDS
if podman build --format docker -t "$IMAGE" "${build_args[@]}" "$ROOT" >"$WORK/build.log" 2>&1; then
    pass "image builds ($((SECONDS - t)) s)"
else
    tail -40 "$WORK/build.log" >&2
    die "podman build (its log's last lines above)"
fi
grep -E '^(STEP|Finished|   Compiling tessera|    Finished)' "$WORK/build.log" | sed 's/^/   /' || true

t=$SECONDS
podman build --format docker -t "$IMAGE" "${build_args[@]}" "$ROOT" >"$WORK/rebuild.log" 2>&1 ||
    { tail -20 "$WORK/rebuild.log" >&2; die "second podman build"; }
runs="$(grep -cE 'STEP [0-9/]+: RUN' "$WORK/rebuild.log" || true)"
cached="$(grep -A1 -E 'STEP [0-9/]+: RUN' "$WORK/rebuild.log" | grep -c '^--> Using cache' || true)"
if [[ $runs -gt 0 && $runs == "$cached" ]]; then
    pass "a second build of the same sources is all cache ($runs RUN steps, $((SECONDS - t)) s)"
else
    fail "a second build re-ran RUN steps ($cached of $runs cached)"
fi
# The dependency layer comes before `COPY src`: Cargo.toml and Cargo.lock alone decide it.
dep_step="$(grep -n 'cargo build' "$ROOT/Dockerfile" | head -1 | cut -d: -f1)"
src_step="$(grep -n '^COPY src' "$ROOT/Dockerfile" | head -1 | cut -d: -f1)"
if [[ -n $dep_step && -n $src_step && $dep_step -lt $src_step ]] &&
    sed -n "1,${dep_step}p" "$ROOT/Dockerfile" | grep -q '^COPY Cargo.toml Cargo.lock'; then
    pass "dependencies are built in a layer before src/ is copied"
else
    fail "no dependency layer before COPY src in the Dockerfile"
fi

# A change under src/ reuses the dependency layer and rebuilds only the crate
# (about as long as the crate's own release build: opt-in).
if [[ ${TESSERA_CONTAINER_SRC_REBUILD:-0} == 1 ]]; then
    ctx="$WORK/context"
    mkdir -p "$ctx"
    cp -a "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT/src" "$ctx/"
    echo "// container-test: a change under src/" >>"$ctx/src/main.rs"
    t=$SECONDS
    if podman build --format docker -t "$IMAGE-src" "${build_args[@]}" "$ctx" >"$WORK/srcbuild.log" 2>&1; then
        dep="$(grep -A1 -E 'STEP [0-9/]+: RUN mkdir src' "$WORK/srcbuild.log" | tail -1)"
        crate="$(grep -A1 -E 'STEP [0-9/]+: RUN cargo build' "$WORK/srcbuild.log" | tail -1)"
        if [[ $dep == '--> Using cache'* && $crate != '--> Using cache'* ]] &&
            podman run --rm "$IMAGE-src" --version >/dev/null 2>&1; then
            pass "after a change under src/ the dependency layer is reused, only the crate is rebuilt ($((SECONDS - t)) s)"
        else
            fail "after a change under src/: dependency step '$dep', crate step '$crate'"
        fi
    else
        tail -20 "$WORK/srcbuild.log" >&2
        fail "build after a change under src/"
    fi
    podman rmi "$IMAGE-src" >/dev/null 2>&1 || true
fi

size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
echo "   image $IMAGE: $((size / 1024 / 1024)) MiB"

# ---- the binary and the image's configuration
podman create --name "$NAME-cp" "$IMAGE" >/dev/null 2>"$WORK/podman.err"
podman cp "$NAME-cp:/usr/local/bin/tessera" "$WORK/tessera" >/dev/null
podman rm "$NAME-cp" >/dev/null 2>&1
if [[ -f $WORK/tessera ]] && ! readelf -S "$WORK/tessera" | grep -qE '\.(symtab|debug_)'; then
    pass "the binary is stripped ($(($(stat -c %s "$WORK/tessera") / 1024 / 1024)) MiB, no .symtab, no .debug_*)"
else
    fail "the binary in the image has a symbol table or debug sections"
fi
hc="$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" 2>/dev/null || true)"
if grep -q '_tessera/health/ready' <<<"$hc"; then
    pass "the image has a HEALTHCHECK on /_tessera/health/ready"
else
    fail "the image has no HEALTHCHECK on the readiness endpoint (got: $hc)"
fi
user="$(podman image inspect --format '{{.Config.User}}' "$IMAGE")"
[[ $user == 10001* ]] && pass "the image runs as uid 10001 ($user)" || fail "the image's user is '$user', not 10001"

# ---- run it
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
data="$WORK/data"
mkdir -p "$data"
chown 10001:10001 "$data" # the image's user; rootless podman: podman unshare chown 10001:10001 DIR
export AWS_ACCESS_KEY_ID="ctest$RANDOM$RANDOM" AWS_SECRET_ACCESS_KEY="secret-$RANDOM-$RANDOM-$RANDOM"
echo "== podman run -d -p 127.0.0.1:$port:9000 -v $data:/data $IMAGE"
# Without systemd, podman logs "unable to get systemd connection to add
# healthchecks" on run, restart and stop (the checks are run by hand below):
# podman's stderr goes to a log, shown when a command fails.
podman run -d --name "$NAME" -p "127.0.0.1:$port:9000" -v "$data:/data" \
    -e TESSERA_ACCESS_KEY="$AWS_ACCESS_KEY_ID" -e TESSERA_SECRET_KEY="$AWS_SECRET_ACCESS_KEY" \
    "$IMAGE" >/dev/null 2>"$WORK/podman.err" || { cat "$WORK/podman.err" >&2; die "podman run"; }
url="http://127.0.0.1:$port"

wait_ready() {
    for _ in $(seq 1 100); do
        [[ "$(curl -fsS "$url/_tessera/health/ready" 2>/dev/null)" == ready ]] && return 0
        [[ "$(podman inspect --format '{{.State.Running}}' "$NAME")" == true ]] || return 1
        sleep 0.2
    done
    return 1
}
if wait_ready; then
    pass "GET /_tessera/health/ready through the published port answers 'ready'"
else
    podman logs "$NAME" >&2 || true
    die "the container did not become ready on 127.0.0.1:$port"
fi
live="$(curl -sS -o /dev/null -w '%{http_code}' "$url/_tessera/health/live")"
[[ $live == 200 ]] && pass "GET /_tessera/health/live answers 200" || fail "health/live answered $live"

# ---- aws-cli v2
aws_() {
    env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_CONFIG_FILE=/dev/null \
        AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= \
        /usr/bin/aws --endpoint-url "$url" "$@"
}
head -c $((200 * 1024 + 17)) /dev/urandom >"$WORK/small.bin"
head -c $((24 * 1024 * 1024 + 5)) /dev/urandom >"$WORK/large.bin" # above aws-cli's 8 MiB multipart threshold
if aws_ s3 mb s3://ctest >"$WORK/aws.log" 2>&1 &&
    aws_ s3 cp "$WORK/small.bin" s3://ctest/dir/small.bin >>"$WORK/aws.log" 2>&1 &&
    aws_ s3 cp "$WORK/large.bin" s3://ctest/large.bin >>"$WORK/aws.log" 2>&1; then
    pass "aws-cli v2: make a bucket, upload 200 KiB and 24 MiB (multipart) objects"
else
    cat "$WORK/aws.log" >&2
    fail "aws-cli v2 uploads"
fi
roundtrip() { # roundtrip LABEL: download both objects and compare bytes
    rm -f "$WORK/small.out" "$WORK/large.out"
    if aws_ s3 cp s3://ctest/dir/small.bin "$WORK/small.out" >>"$WORK/aws.log" 2>&1 &&
        aws_ s3 cp s3://ctest/large.bin "$WORK/large.out" >>"$WORK/aws.log" 2>&1 &&
        cmp -s "$WORK/small.bin" "$WORK/small.out" && cmp -s "$WORK/large.bin" "$WORK/large.out"; then
        pass "aws-cli v2: both objects read back byte for byte $1"
    else
        cat "$WORK/aws.log" >&2
        fail "aws-cli v2: objects read back differ or failed $1"
    fi
}
roundtrip "(through the published port)"
listing="$(aws_ s3 ls --recursive s3://ctest 2>&1 || true)"
if grep -q 'dir/small.bin' <<<"$listing" && grep -q 'large.bin' <<<"$listing"; then
    pass "aws-cli v2: s3 ls lists both objects"
else
    fail "aws-cli v2: s3 ls: $listing"
fi
etag="$(aws_ s3api head-object --bucket ctest --key large.bin --query ETag --output text 2>&1 || true)"
[[ $etag == *-* ]] && pass "the 24 MiB object has a multipart ETag ($etag)" || fail "head-object large.bin: $etag"

# ---- ownership of what the container wrote in the bind-mounted folder
others="$(find "$data" ! -uid 10001 | head -3)"
if [[ -z $others && -n "$(find "$data" -mindepth 1 | head -1)" ]]; then
    pass "everything in the bind-mounted data folder belongs to uid 10001"
else
    fail "files in the data folder not owned by 10001: $others"
fi

# ---- the HEALTHCHECK as the engine runs it
# Podman schedules health checks with systemd timers; where there is no systemd
# (this sandbox, CI) `podman healthcheck run` runs it and records the result.
if hc_out="$(podman healthcheck run "$NAME" 2>&1)"; then
    status="$(podman inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null ||
        podman inspect --format '{{.State.Healthcheck.Status}}' "$NAME")"
    if [[ $status == healthy ]]; then
        pass "podman healthcheck run: the HEALTHCHECK passes, status '$status'"
    else
        fail "the HEALTHCHECK ran but the status is '$status'"
    fi
else
    fail "podman healthcheck run failed: $hc_out"
fi

# Not ready: tessera's tmp/ in the volume made read-only for uid 10001. The
# readiness endpoint answers 503 and, after the HEALTHCHECK's 3 retries, the
# status is unhealthy; writable again, it is healthy again.
if [[ -d $data/tmp ]]; then
    chmod 0555 "$data/tmp"
    code="$(curl -sS -o "$WORK/ready.txt" -w '%{http_code}' "$url/_tessera/health/ready" || true)"
    for _ in 1 2 3; do podman healthcheck run "$NAME" >/dev/null 2>&1 || true; done
    status="$(podman inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null || true)"
    if [[ $code == 503 && $status == unhealthy ]]; then
        pass "tmp/ not writable: ready answers 503 ($(tr -d '\n' <"$WORK/ready.txt" | cut -c1-90)), status 'unhealthy'"
    else
        fail "tmp/ not writable: ready answered $code, health status '$status'"
    fi
    chmod 0755 "$data/tmp"
    podman healthcheck run "$NAME" >/dev/null 2>&1 || true
    status="$(podman inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null || true)"
    [[ $status == healthy ]] && pass "writable again: status 'healthy'" || fail "writable again, status '$status'"
else
    fail "no tmp/ in the data folder (the readiness probe writes there)"
fi

# ---- restart: the objects are in the volume
podman restart -t 10 "$NAME" >/dev/null 2>"$WORK/podman.err" || { cat "$WORK/podman.err" >&2; fail "podman restart"; }
if wait_ready; then
    roundtrip "after a restart"
else
    podman logs "$NAME" >&2 || true
    fail "not ready after podman restart"
fi
podman stop -t 10 "$NAME" >/dev/null 2>"$WORK/podman.err" || { cat "$WORK/podman.err" >&2; fail "podman stop"; }
code="$(podman inspect --format '{{.State.ExitCode}}' "$NAME")"
[[ $code == 0 ]] && pass "podman stop: tessera exits 0 on SIGTERM" || fail "exit code after podman stop: $code"
podman logs "$NAME" >"$WORK/server.log" 2>&1 || true
if grep -q 'HealthReady' "$WORK/server.log" && grep -q 'PutObject' "$WORK/server.log"; then
    pass "the container's log has access lines (PutObject, HealthReady)"
else
    fail "no access lines in the container's log"
fi

# ---- a data folder uid 10001 cannot write is refused, naming the folder
mkdir -p "$WORK/rootowned"
chmod 0755 "$WORK/rootowned"
podman run -d --name "$NAME-ro" -v "$WORK/rootowned:/data" "$IMAGE" >/dev/null 2>"$WORK/podman.err" || true
podman wait "$NAME-ro" >/dev/null 2>&1 || true
ro_log="$(podman logs "$NAME-ro" 2>&1 || true)"
ro_code="$(podman inspect --format '{{.State.ExitCode}}' "$NAME-ro" 2>/dev/null || echo '?')"
if [[ $ro_code != 0 ]] && grep -q '/data' <<<"$ro_log" && grep -qi 'permission denied' <<<"$ro_log"; then
    pass "a root-owned bind mount is refused (exit $ro_code): $(grep -m1 'opening data folder' <<<"$ro_log" | cut -c1-120)"
else
    fail "a root-owned bind mount: exit $ro_code, log: $ro_log"
fi

finish
