# syntax=docker/dockerfile:1
# kube-event-logger: a static binary in an empty, non-root image.
#   docker build -t registry.example.com/kube-event-logger:0.1.0 .

FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin kube-event-logger \
    && cp target/x86_64-unknown-linux-musl/release/kube-event-logger /kube-event-logger \
    && strip /kube-event-logger

# Nothing but the binary: no shell, no package manager, no CA bundle (in-cluster access uses
# the service account's CA).
FROM scratch
COPY --from=build /kube-event-logger /kube-event-logger
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/kube-event-logger"]
CMD ["run"]
