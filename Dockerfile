# syntax=docker/dockerfile:1
# One image for every orders binary (api, worker, payment sandbox, console, stackctl): the services
# share almost all their crates, so one release build compiles them once, and docker-compose.yml
# picks the binary per service with `command:`. The console's page is built with npm in its own stage.
#
#   docker build -t orders:local .
#   docker run --rm orders:local orders-stackctl    # prints its usage

ARG RUST_VERSION=1.95
ARG NODE_VERSION=22

# ---------------------------------------------------------------- the console's page
FROM node:${NODE_VERSION}-bookworm-slim AS web
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/console/web/ ./
RUN npm run build

# ---------------------------------------------------------------- the Rust binaries
FROM rust:${RUST_VERSION}-bookworm AS build
# librdkafka is built from source by rdkafka-sys (make, a C compiler: in this image) against zlib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The caches keep the registry and incremental artifacts between builds; the binaries are copied
# out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
      -p orders-api -p orders-worker -p orders-payment-sim -p orders-console -p orders-stackctl \
 && mkdir -p /out \
 && for bin in orders-api orders-worker orders-payment-sim orders-console orders-stackctl; do \
      cp "target/release/$bin" /out/; \
    done

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime
# curl for the health checks; ca-certificates for a payment provider reached over https.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin orders
COPY --from=build /out/ /usr/local/bin/
COPY --from=web /web/dist/ /usr/share/orders/console/
# What orders-stackctl applies and seeds, and the health model the console draws.
COPY schemas/cql/ /usr/share/orders/schemas/cql/
COPY deploy/seed/ /usr/share/orders/seed/
COPY deploy/health-model.yaml /etc/orders/health-model.yaml
ENV RUST_LOG=info \
    ORDERS_HEALTH_MODEL=/etc/orders/health-model.yaml \
    ORDERS_CONSOLE_WEB=/usr/share/orders/console
USER orders:orders
WORKDIR /usr/share/orders
# Liveness of whichever service runs: its port is the one it listens on (ORDERS_LISTEN, or
# PAYMENT_SIM__LISTEN for the payment sandbox). docker-compose.yml states each check explicitly too.
HEALTHCHECK --interval=5s --timeout=2s --start-period=30s --retries=3 \
  CMD addr="${ORDERS_LISTEN:-${PAYMENT_SIM__LISTEN:-}}"; \
      curl -fsS -o /dev/null "http://127.0.0.1:${addr##*:}/health/live" || exit 1
CMD ["orders-api"]
