# The two commands a newcomer needs:
#   make run   - the whole system locally (embedded Temporal + Web UI + worker + API)
#   make test  - every test, starting what the tests need
SHELL := /bin/bash
export GOTOOLCHAIN := auto

# Two binaries of one command line (internal/cli):
#   bin/artifactstate-prod  the production binary, the image's: api, worker,
#                           migrate, loadtest, replay, stuck (product module,
#                           ./cmd/artifactstate; links no Temporal server)
#   bin/artifactstate       the development binary: all of those plus dev
#                           (what `make run` starts), bench, record-histories
#                           (development module, dev/cmd/artifactstate)
BIN := bin/artifactstate
PROD_BIN := bin/artifactstate-prod
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CLI := github.com/artifactstate/artifactstate/internal/cli
# The one build command; the Dockerfile runs `make build-prod`.
GO_BUILD := CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $(CLI).version=$(VERSION) -X $(CLI).commit=$(COMMIT)"

.PHONY: run test build build-prod lint proto clean cassandra-start cassandra-stop record-histories record-production-histories replay-corpus

build: build-prod
	cd dev && $(GO_BUILD) -o ../$(BIN) ./cmd/artifactstate

build-prod:
	$(GO_BUILD) -o $(PROD_BIN) ./cmd/artifactstate

run: build
	scripts/run

test:
	scripts/test

# Every static check, each step timed (scripts/lint): buf lint and the gen/
# freshness check, gofmt, tidy, vet, staticcheck, the SDK's workflowcheck, the
# dependency rules (scripts/depcheck) and govulncheck on both binaries; tidy,
# vet and staticcheck on the other modules too: the development module (the
# Temporal server and everything that links it: dev/go.mod), the deployment
# checks (so that compose-go, kustomize and the Kubernetes types stay out of
# go.mod) and the image's health probe (built without them).
lint:
	scripts/lint

# The gRPC API's Go code (gen/) from proto/, with buf and the plugins pinned in
# tools/go.mod (buf.gen.yaml); `make lint` fails when the committed gen/ is not
# what this generates.
proto:
	go tool -modfile=tools/go.mod buf generate

# Regenerate the replay corpus for the current workflow code (see
# docs/workflow-versioning.md); files of earlier versions are kept.
record-histories: build
	$(BIN) record-histories --out replaytests/testdata
	$(BIN) record-histories --out replaytests/testdata/encrypted --encryption-keys-file replaytests/testdata/encrypted/keys.yaml

# Re-record the production-shaped corpus (replaytests/testdata/production)
# from every release in replaytests/releases.txt, built from git, and from
# this work tree (scripts/record-production-histories; RELEASE=N for one).
record-production-histories: build
	scripts/record-production-histories

# Replay the corpus with the binary (the tests do the same).
replay-corpus: build
	$(BIN) replay $(addprefix --file ,$(wildcard replaytests/testdata/*.json.gz))

# A local Cassandra for development, data kept in .data/cassandra.
cassandra-start:
	scripts/cassandra start --dir .data/cassandra

cassandra-stop:
	scripts/cassandra stop --dir .data/cassandra

clean:
	rm -rf bin
