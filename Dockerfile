# syntax=docker/dockerfile:1
# sdsim: one image for every service (`sdsim serve gateway|auth|project|simulation`, or
# `sdsim up` for all four in one process, the default). Not built on the development
# machines (no Docker engine there): keep it conventional. Build: `docker build -t sdsim .`

# --- build -----------------------------------------------------------------------------
FROM rust:1.88-bookworm AS builder
WORKDIR /src
# protox compiles the .proto files in Rust and PostgreSQL is spoken in Rust: no system
# libraries or protoc needed. The console (console/web/) and the engine's templates are
# embedded in the binary.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sdsim \
    && cp target/release/sdsim /usr/local/bin/sdsim

# --- runtime ---------------------------------------------------------------------------
FROM debian:12-slim
# ca-certificates: SMTP over TLS; curl: the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sdsim \
    && useradd --system --uid 10001 --gid sdsim --home-dir /var/lib/sdsim --shell /usr/sbin/nologin sdsim \
    && mkdir -p /var/lib/sdsim/outbox \
    && chown -R sdsim:sdsim /var/lib/sdsim
COPY --from=builder /usr/local/bin/sdsim /usr/local/bin/sdsim

# In a container every listener binds all interfaces; other instances dial the address
# discovery advertises: set SDSIM_DISCOVERY__ADVERTISE_HOST to this container's name or IP.
ENV SDSIM_GATEWAY__LISTEN__HTTP=0.0.0.0:8000 \
    SDSIM_GATEWAY__LISTEN__GRPC=0.0.0.0:8001 \
    SDSIM_AUTH__LISTEN__GRPC=0.0.0.0:9000 \
    SDSIM_AUTH__LISTEN__HTTP=0.0.0.0:9001 \
    SDSIM_PROJECT__LISTEN__GRPC=0.0.0.0:10000 \
    SDSIM_PROJECT__LISTEN__HTTP=0.0.0.0:10001 \
    SDSIM_SIMULATION__LISTEN__GRPC=0.0.0.0:11000 \
    SDSIM_SIMULATION__LISTEN__HTTP=0.0.0.0:11001 \
    SDSIM_AUTH__MAIL__OUTBOX_DIR=/var/lib/sdsim/outbox \
    SDSIM_HEALTH_PORT=8000

USER sdsim:sdsim
WORKDIR /var/lib/sdsim
# gateway: 8000 HTTP (REST, WebSocket, /metrics), 8001 gRPC; auth 9000 gRPC, 9001 HTTP;
# project 10000/10001; simulation 11000/11001 (README.md, "Ports").
EXPOSE 8000 8001 9000 9001 10000 10001 11000 11001
# /livez of the service's HTTP port: SDSIM_HEALTH_PORT (8000 gateway, 9001 auth, 10001
# project, 11001 simulation).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${SDSIM_HEALTH_PORT}/livez" || exit 1
# On SIGTERM sdsim turns unready, closes WebSockets with 1001 and drains (shutdown.grace_ms).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sdsim"]
CMD ["up"]
