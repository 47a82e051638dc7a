#!/usr/bin/env bash
# Runs every test: lint, unit tests (no root), integration tests (real
# servers, real kubectl), then end-to-end tests on this machine's containerd
# (root; skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
hack/lint.sh
echo "== unit tests"
go test -count=1 ./...
echo "== integration tests"
go build -o bin/wharf ./cmd/wharf
go build -o bin/wharf-cni ./cmd/wharf-cni
go test -tags integration -count=1 -timeout 20m ./test/integration/...
echo "== end-to-end tests (root, containerd)"
go test -tags e2e -count=1 -timeout 20m ./test/e2e/...
