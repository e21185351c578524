SHELL := /bin/bash
GOBIN ?= $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
BIN := bin/bmaas
GO_TEST_FLAGS ?= -count=1 -timeout 15m

.PHONY: all build run test test-python test-unit test-integration check generate tools tidy fmt-check vet lint breaking bench gpu-check-build gpu-check clean

all: build

tools: ## install the code generators and linters (offline-capable from the module cache)
	@command -v buf >/dev/null || go install github.com/bufbuild/buf/cmd/buf@v1.75.0
	@command -v protoc-gen-go >/dev/null || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	@command -v protoc-gen-go-grpc >/dev/null || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
	@command -v protoc-gen-grpc-gateway >/dev/null || go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@v2.33.0
	@command -v protoc-gen-openapiv2 >/dev/null || go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@v2.33.0

generate: tools ## regenerate api/ from proto/
	rm -rf api/bmaas api/inference api/openapi
	buf generate
	cp api/openapi/bmaas.swagger.json internal/app/openapi.json

build: ## build the one binary
	go build -o $(BIN) ./cmd/bmaas

run: build ## run the whole platform in one process (the README's walkthrough imports from examples/)
	./$(BIN) up --registry.import-roots=$(CURDIR)/examples

PYTHON ?= /usr/bin/python3

# Test files that start etcd, NATS, a cluster or the bmaas binary begin with
# //go:build integration (internal/testenv says why). The integration tier
# runs the tests of those files, in their packages; the unit tests beside
# them ran in the unit tier. tests/, the longest package, goes first so that
# the others run beside it.
INTEGRATION_FILES = $(shell grep -rl --include='*_test.go' '^//go:build integration' cmd internal pkg services tests bench web)
INTEGRATION_PKGS = $(sort $(patsubst %/,./%,$(dir $(INTEGRATION_FILES))))
INTEGRATION_TESTS = $(shell sed -nE 's/^func ((Test|Example|Fuzz)[A-Za-z0-9_]*)[^A-Za-z0-9_].*/\1/p' $(INTEGRATION_FILES) | sort -u | paste -sd'|')

test: test-python test-unit test-integration ## the Python SDK's tests, then Go's unit and integration tiers

test-python: ## the Python SDK's and the example runtimes' and trainers' tests (standard library unittest)
	@if [ -x $(PYTHON) ]; then $(PYTHON) -m unittest discover -s sdk/python/tests && $(PYTHON) -m unittest discover -s examples/runtimes/torch-v2 && \
	  $(PYTHON) -m unittest discover -s examples/pytorch && \
	  $(PYTHON) -m unittest discover -s examples/llm && $(PYTHON) -m unittest discover -s examples/runtimes/llm-torch; \
	  else echo "skipping the Python SDK tests: $(PYTHON) not found"; fi

test-unit: ## Go unit tests: no etcd, NATS, cluster or bmaas process (go test ./...)
	go test $(GO_TEST_FLAGS) ./... ./api/...

test-integration: ## Go integration tests: real etcd, NATS, clusters and processes (-tags integration)
	go test $(GO_TEST_FLAGS) -tags integration -run '^($(INTEGRATION_TESTS))$$' $(filter ./tests,$(INTEGRATION_PKGS)) $(filter-out ./tests,$(INTEGRATION_PKGS))

tidy:
	go mod tidy
	cd api && go mod tidy
	go work sync

vet:
	go vet -tags integration ./... ./api/...

lint: tools
	buf lint

fmt-check:
	@out=$$(gofmt -l cmd internal pkg services tests bench web); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# BREAKING_AGAINST is the release the API must stay wire-compatible with.
BREAKING_AGAINST ?= v0.1.0

breaking: tools ## fail when a proto change breaks the wire against the last release tag
	@if git rev-parse -q --verify 'refs/tags/$(BREAKING_AGAINST)' >/dev/null; then \
	  buf breaking --against '.git#tag=$(BREAKING_AGAINST)'; \
	else \
	  echo "buf breaking skipped: tag $(BREAKING_AGAINST) is missing (git fetch --tags, or BREAKING_AGAINST=<tag>)" >&2; \
	fi

check: generate tidy fmt-check vet lint breaking ## fail when generated code or go.mod drift
	@git diff --exit-code -- api go.mod go.sum api/go.mod api/go.sum go.work internal/app/openapi.json || \
	  (echo "generated code or module files drifted: run 'make generate tidy' and commit" >&2; exit 1)
	@test -z "$$(git status --porcelain -- api)" || (git status --porcelain -- api; echo "untracked generated files" >&2; exit 1)

bench: build ## benchmarks; figures go to bench/README.md
	./bench/run.sh

gpu-check-build: ## a stripped binary for make gpu-check on a GPU machine without Go
	go build -ldflags='-s -w' -o $(BIN) ./cmd/bmaas

gpu-check: ## on a machine with an NVIDIA GPU and CUDA PyTorch: NVML, CUDA training, torch-v2 serving (BMAAS_BIN, PYTHON, OUT)
	BMAAS_BIN=$${BMAAS_BIN:-$(BIN)} bench/gpu/check.sh

clean:
	rm -rf bin
