# syntax=docker/dockerfile:1
# The action's image: one static binary and a CA bundle, nothing else (no shell, no libc files).
# The builder runs on the build machine's platform and cross-compiles for the target platform,
# so an arm64 image builds in minutes, not under emulation.

# rust:1.95-bookworm, pinned by digest; refresh with Dependabot (docker ecosystem) or
# `docker buildx imagetools inspect rust:1.95-bookworm`.
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
ARG TARGETARCH
RUN set -eux; \
    case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-gnu > /target ;; \
      arm64) echo aarch64-unknown-linux-gnu > /target; \
             apt-get update; apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross; \
             rm -rf /var/lib/apt/lists/* ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    rustup target add "$(cat /target)"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY scripts/build-static.sh ./scripts/
RUN set -eux; \
    bin=$(scripts/build-static.sh "$(cat /target)"); \
    install -D -m 0555 "$bin" /out/secret-rotator

# The GitLab CI/CD component's image (`docker build --target gitlab`): GitLab runs job scripts
# with a shell, so this one adds busybox (static, about 1 MB) beside the same binary.
# busybox:1.37-musl, pinned by digest.
FROM busybox:1.37-musl@sha256:fc6dddc4c44b1bfe37f41cae8e67d1693828e8f42a91862816d7953e2c9d3f23 AS gitlab
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/secret-rotator /usr/local/bin/secret-rotator

# The GitHub Action's image (the default target): the binary and a CA bundle, nothing else.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/secret-rotator /secret-rotator
LABEL org.opencontainers.image.title="secret-rotator" \
      org.opencontainers.image.description="Rotate CI credentials and write them back to CI secrets, never losing or leaking one" \
      org.opencontainers.image.licenses="Apache-2.0"
# GitHub runs a docker action's entrypoint with the action's args (rotate / check).
ENTRYPOINT ["/secret-rotator"]
