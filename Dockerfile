# syntax=docker/dockerfile:1
# Build stage: the release binary of the gateway package only, with the
# locked dependency set. The whole workspace is copied because cargo reads
# every member's manifest; only `gateway` is built (no mocks, no benchmark,
# and none of their dependencies' features).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY crates ./crates
RUN cargo build --release --locked -p gateway --bin gateway \
 && strip target/release/gateway

# Runtime stage: Debian slim with CA certificates, non-root.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home gateway \
 && mkdir -p /etc/gateway
COPY --from=build /src/target/release/gateway /usr/local/bin/gateway
COPY config.example.yaml /etc/gateway/config.yaml
USER gateway
ENV GATEWAY_CONFIG=/etc/gateway/config.yaml
EXPOSE 4000
# No curl in the image: bash's /dev/tcp is enough for a liveness probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/4000 && printf 'GET /health/liveliness HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["gateway"]
CMD ["--host", "0.0.0.0", "--port", "4000"]
