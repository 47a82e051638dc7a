#!/usr/bin/env bash
# Runs every test: lint, unit tests (no root), integration tests (real
# servers, real kubectl), each package's fuzz seeds included.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
hack/lint.sh
echo "== unit tests"
go test -count=1 ./...
echo "== integration tests"
go build -o bin/wharf ./cmd/wharf
go test -tags integration -count=1 -timeout 20m ./test/...
