# syntax=docker/dockerfile:1
#
# One Dockerfile, three images. Build one with its target:
#
#   docker build --target auth-service -t authrealm/auth-service:dev .
#   docker build --target main-project -t authrealm/main-project:dev .
#   docker build --target operator     -t authrealm/authrealm-operator:dev .
#
# The three share the build stages: the dependency layer (cargo-chef) is
# rebuilt only when a Cargo.toml or Cargo.lock changes, and one `cargo build`
# produces all three binaries. Runtime images are distroless (glibc, CA
# certificates, no shell, no package manager) and run as the non-root user
# 65532.

# Newest stable Rust the workspace is built with; the workspace's rust-version
# (Cargo.toml) is the oldest it supports. Debian 12 matches the runtime image.
ARG RUST_VERSION=1.95
ARG CARGO_CHEF_VERSION=0.1.78
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---------------------------------------------------------------- build stages
FROM rust:${RUST_VERSION}-bookworm AS chef
ARG CARGO_CHEF_VERSION
WORKDIR /src
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"

# The recipe: every manifest and the lock file, nothing else. Its contents only
# change when dependencies do, which is what keeps the next stage cached.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies of every workspace member, in release mode: the cached layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo chef cook --release --locked --workspace --recipe-path recipe.json
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo build --release --locked --workspace \
      --bin auth-service --bin main-project --bin authrealm-operator \
 && mkdir -p /out \
 && cp target/release/auth-service target/release/main-project target/release/authrealm-operator /out/

# ---------------------------------------------------------------- runtime images
# auth-service (MA): JWT signing, JWKS, refresh rotation, revocation list.
FROM ${RUNTIME_IMAGE} AS auth-service
COPY --from=builder /out/auth-service /usr/local/bin/auth-service
USER 65532:65532
EXPOSE 8081 8083 9081
ENTRYPOINT ["/usr/local/bin/auth-service"]

# main-project (OP): users, login, the protected API.
FROM ${RUNTIME_IMAGE} AS main-project
COPY --from=builder /out/main-project /usr/local/bin/main-project
USER 65532:65532
EXPOSE 8080 9080
ENTRYPOINT ["/usr/local/bin/main-project"]

# The AuthRealm operator. Last, so a plain `docker build .` gives this image.
FROM ${RUNTIME_IMAGE} AS operator
COPY --from=builder /out/authrealm-operator /usr/local/bin/authrealm-operator
USER 65532:65532
EXPOSE 8082
ENTRYPOINT ["/usr/local/bin/authrealm-operator"]
