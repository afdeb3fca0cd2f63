# syntax=docker/dockerfile:1.7
#
# One image for every production role of artifactstate: the entrypoint is the
# production binary (bin/artifactstate-prod, ./cmd/artifactstate: api, worker,
# migrate, loadtest, replay, stuck) and the first argument picks the role. The
# all-in-one `dev` role (embedded Temporal server + Web UI) is not in the
# image: it lives in the development binary (dev/cmd/artifactstate, `make run`).
#
#   docker build -t artifactstate:dev --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) .
#   docker run --rm artifactstate:dev version
#   docker run --rm -p 8082:8082 -e ARTIFACTSTATE_TEMPORAL_ADDRESS=temporal:7233 artifactstate:dev api
#   docker run --rm -e ARTIFACTSTATE_TEMPORAL_ADDRESS=temporal:7233 artifactstate:dev worker
#   docker run --rm -e ARTIFACTSTATE_CASSANDRA_HOSTS=cassandra:9042 artifactstate:dev migrate
#
# With no argument the container runs `api` (CMD below); every deployment in
# this repository names its role explicitly anyway.

# Build stage: the Go toolchain the project pins (go.mod: go 1.27.3,
# the image's own toolchain, GOTOOLCHAIN=local), running `make build-prod`, the production half of the
# `make build` CI and developers use. deploy/dockerfile_test.go checks this RUN
# line stays `make build-prod`.
ARG GO_VERSION=1.27.3
FROM golang:${GO_VERSION}-bookworm AS build
ENV GOTOOLCHAIN=local \
    CGO_ENABLED=0
WORKDIR /src
# Module downloads are cached in their own layer while go.mod/go.sum are unchanged.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# Build information baked into the binary (`artifactstate version`, the
# start-up log line) and into the image labels below.
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    make build-prod VERSION=${VERSION} COMMIT=${COMMIT} \
    && go -C deploy/compose/healthprobe build -trimpath -ldflags "-s -w" -o /src/bin/healthprobe . \
    && bin/artifactstate-prod version

# Runtime stage: distroless static (CA certificates, tzdata, /etc/passwd with
# the nonroot user, no shell, no package manager), running as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="artifactstate" \
      org.opencontainers.image.description="Per-(user, artifact) read and feed state on Temporal entity workflows: api, worker and migrate roles" \
      org.opencontainers.image.source="https://github.com/artifactstate/artifactstate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /src/bin/artifactstate-prod /artifactstate
# A tiny HTTP GET for container health checks (docker compose): the image has
# no shell or curl. Kubernetes uses its own httpGet probes instead.
COPY --from=build /src/bin/healthprobe /healthprobe
USER 65532:65532
# `dev` keeps its SQLite under ./.artifactstate: the nonroot home is writable.
WORKDIR /home/nonroot
# api: REST API, /healthz, /readyz, /metrics. worker: /metrics, /healthz, /readyz.
# dev also serves the embedded Temporal frontend (7233) and Web UI (8233).
EXPOSE 8082 9090
ENTRYPOINT ["/artifactstate"]
CMD ["api"]
