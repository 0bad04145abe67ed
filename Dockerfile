# Multi-stage build: compile with the Rust toolchain, ship only the binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
RUN cargo build --release --locked --bin tessera

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tessera \
    && mkdir -p /data && chown tessera:tessera /data
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
USER tessera
VOLUME ["/data"]
EXPOSE 9000
# Set TESSERA_ACCESS_KEY / TESSERA_SECRET_KEY, or read the generated pair from the log.
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve", "--listen", "0.0.0.0:9000", "--data", "/data"]
