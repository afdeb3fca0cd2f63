# The two commands a newcomer needs:
#   make run   - the whole system locally (embedded Temporal + Web UI + worker + API)
#   make test  - every test, starting what the tests need
SHELL := /bin/bash
export GOTOOLCHAIN := local

BIN := bin/artifactstate
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The one build command; the Dockerfile runs the same target.
GO_BUILD := CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)"

.PHONY: run test build lint clean cassandra-start cassandra-stop

build:
	$(GO_BUILD) -o $(BIN) ./cmd/artifactstate

run: build
	scripts/run

test:
	scripts/test

lint:
	go vet ./...

# A local Cassandra for development, data kept in .data/cassandra.
cassandra-start:
	scripts/cassandra start --dir .data/cassandra

cassandra-stop:
	scripts/cassandra stop --dir .data/cassandra

clean:
	rm -rf bin
