# Multi-stage build: compile with the Rust toolchain, ship only the stripped binary.
#
#   podman build --format docker -t tessera .      # or: docker build -t tessera .
#   podman run -d -p 9000:9000 -v tessera-data:/data tessera
#
# `--format docker` keeps the HEALTHCHECK (the OCI image format has no such field,
# and podman builds OCI images unless told). The base images are arguments so that
# a machine without a registry can build from images it made itself
# (scripts/container-test.sh does); docs/container.md says more.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Strip the binary (the release profile keeps line tables for backtraces on a
# developer's machine; the image does without).
ENV CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_TERM_COLOR=never
# Dependency-cache layer: build every dependency against placeholder sources, so
# that a change under src/ rebuilds only Tessera's own crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin tessera \
    && rm -rf src target/release/tessera target/release/deps/tessera-* \
        target/release/deps/libtessera-* target/release/.fingerprint/tessera-*
# build.rs embeds the web console's page (src/console/assets/) in the binary.
COPY build.rs ./
COPY src ./src
RUN cargo build --release --locked --bin tessera \
    && ./target/release/tessera --version

FROM ${RUNTIME_IMAGE}
# curl only for the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin tessera \
    && mkdir -p /data && chown tessera:tessera /data && chmod 0750 /data
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
# The process runs as uid 10001: a host folder bind-mounted on /data must be
# writable by it (`chown -R 10001:10001 DIR`, or `podman unshare chown -R
# 10001:10001 DIR` rootless), or run with `--user` set to the folder's owner.
# A named volume needs nothing: it starts as a copy of /data, owned by 10001.
USER 10001:10001
VOLUME ["/data"]
EXPOSE 9000
# Ready = the store is open, /data writable, free space above the reserve. Plain
# HTTP first, then HTTPS (self-signed certificates accepted) for --tls-cert.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:9000/_tessera/health/ready \
        || curl -fsSk -o /dev/null https://127.0.0.1:9000/_tessera/health/ready \
        || exit 1
# Set TESSERA_ACCESS_KEY / TESSERA_SECRET_KEY, or read the generated pair from
# the log (or /data/root-credentials) at the first start.
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve", "--listen", "0.0.0.0:9000", "--data", "/data"]
