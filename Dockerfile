# One image for all five services and the CLI; compose and Kubernetes pick the binary to run.
# Build stage: the Swift toolchain on Debian 12 (the same as the development machines).
FROM swift:6.1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libnats-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies first so that source edits do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Shared Shared
COPY Services Services
COPY Benchmarks Benchmarks
# Not built, but the manifest declares the test targets: SwiftPM refuses a package whose target
# folders are missing.
COPY Tests Tests
# One product a build: SwiftPM builds only the last of several --product options. Cross-module
# optimisation on every module: 2-8% less gateway CPU a call (6-7.5% in three of four measurements,
# with Swift 6.3.1; BENCHMARKS.md, the hot path).
RUN for p in warden-gateway warden-vault warden-policy warden-approvals warden-audit warden; do \
         swift build -c release --static-swift-stdlib -Xswiftc -cross-module-optimization --product "$p" || exit 1; done \
    && mkdir /out \
    && for p in warden-gateway warden-vault warden-policy warden-approvals warden-audit warden; do \
         cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/$p" /out/; done

# Runtime stage: slim Debian with only libnats (and its libssl), running as a non-root user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends libnats3.4 ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin warden
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
ENV WARDEN_HTTP_HOST=0.0.0.0 WARDEN_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/warden-gateway"]
