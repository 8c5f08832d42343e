# syntax=docker/dockerfile:1
#
# txshadow image: the release binary plus the shipped corpora, so that
#   docker run --rm ghcr.io/txshadow/txshadow replay
# replays corpora/mainnet offline and writes /txshadow/reports/<run-id>/.
#
#   docker build -t ghcr.io/txshadow/txshadow:latest .

# ---- build ---------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the workspace needs to build: the manifests, the lock file and the member crates
# (crates/* and benches). The corpora are copied into the runtime stage, so changing a corpus
# does not rebuild the binary.
COPY Cargo.toml Cargo.lock ./
COPY crates/ crates/
COPY benches/ benches/
# The registry and target directories are BuildKit cache mounts: a rebuild after a source change
# recompiles txshadow's crates, not its dependencies. The binary is copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p txshadow \
    && install -D -m 0755 target/release/txshadow /out/txshadow

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: capture and node sides talk HTTPS to JSON-RPC endpoints.
# Versions follow the bookworm point release the base image was built from.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, non-root uid/gid, so volumes can be prepared for it (Kubernetes fsGroup: 10001).
RUN groupadd --system --gid 10001 txshadow \
    && useradd --system --uid 10001 --gid txshadow --home-dir /txshadow --shell /usr/sbin/nologin txshadow \
    && mkdir -p /txshadow/reports \
    && chown txshadow:txshadow /txshadow /txshadow/reports
COPY --from=build /out/txshadow /usr/local/bin/txshadow
COPY --chown=txshadow:txshadow corpora/ /txshadow/corpora/
WORKDIR /txshadow
USER 10001:10001
LABEL org.opencontainers.image.title="txshadow" \
      org.opencontainers.image.description="Shadow-traffic transaction replay for Ethereum: capture, corpus, replay, diff, report" \
      org.opencontainers.image.source="https://github.com/txshadow/txshadow" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
ENTRYPOINT ["txshadow"]
CMD ["--help"]
