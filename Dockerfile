# One image with the three chat3 binaries (chat3-api, update-worker, bff); docker-compose.yml picks
# the command per service.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# Cache mounts (BuildKit) keep the registry and target/ between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p chat3-api -p chat3-update-worker -p chat3-bff --bins \
 && mkdir -p /out \
 && cp target/release/chat3-api target/release/update-worker target/release/bff /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home chat3 \
 && mkdir -p /run/chat3 && chown chat3 /run/chat3
COPY --from=builder /out/ /usr/local/bin/
COPY scripts/compose-bootstrap.sh /usr/local/bin/chat3-compose-bootstrap
USER chat3
ENV CHAT3_API_BIND=0.0.0.0:3000 \
    CHAT3_BFF_BIND=0.0.0.0:8080 \
    CHAT3_LOG_FORMAT=json
EXPOSE 3000 8080
CMD ["chat3-api", "serve"]
