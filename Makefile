# Thin entry points; the logic lives in hack/.
GO ?= go
BIN := bin/wharf

.PHONY: all build images test unit integration demo bench lint deps clean

all: build

deps:
	hack/install-deps.sh

# The binary and the pod network's CNI plugin next to it (the agent finds it
# there; static: containerd runs it twice per pod, and without the dynamic
# loader it starts in half the time), then the images clusters run (bin/images/*.tar, see internal/images).
build:
	$(GO) build -o $(BIN) ./cmd/wharf
	CGO_ENABLED=0 $(GO) build -o bin/wharf-cni ./cmd/wharf-cni
	$(BIN) image build --out bin/images --log-level warn

images: build

# Every test: lint, unit tests, integration tests against real servers with the
# real kubectl, end-to-end tests on this machine's containerd (root).
test: deps
	hack/test.sh

unit:
	$(GO) test ./...

e2e: build
	$(GO) test -tags e2e -count=1 ./test/e2e/...

integration: build
	$(GO) test -tags integration -count=1 ./test/integration/...

demo: deps build
	hack/demo.sh

bench: build
	hack/bench.sh

lint:
	hack/lint.sh

clean:
	rm -rf bin
