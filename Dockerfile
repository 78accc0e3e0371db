# syntax=docker/dockerfile:1
# kube-event-logger: a static binary in an empty, non-root image, for amd64 and arm64.
#   docker build -t registry.example.com/kube-event-logger:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     -t registry.example.com/kube-event-logger:0.1.0 --push .
# Each platform is built natively (under emulation on a foreign builder): the musl target is the
# build machine's own architecture, so no cross linker is needed.

FROM rust:1.95-bookworm AS build
# Pinned to Debian 12's version, so that a rebuild gets the same toolchain (hadolint DL3008).
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The tests' support crate: a workspace member and dev-dependency, so Cargo reads its manifest.
COPY tests/support ./tests/support
# x86_64 or aarch64, as the platform being built.
RUN target="$(uname -m)-unknown-linux-musl" \
    && rustup target add "$target" \
    && cargo build --release --locked --target "$target" --bin kube-event-logger \
    && cp "target/$target/release/kube-event-logger" /kube-event-logger \
    && strip /kube-event-logger

# Nothing but the binary: no shell, no package manager, no CA bundle (in-cluster access uses
# the service account's CA).
FROM scratch
COPY --from=build /kube-event-logger /kube-event-logger
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kube-event-logger"]
CMD ["run"]
