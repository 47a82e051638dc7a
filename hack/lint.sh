#!/usr/bin/env bash
# gofmt, go.mod and go.sum tidy, go vet (with the integration and e2e
# tags, so those tests are checked too) and staticcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l cmd internal test images 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" $unformatted >&2
  exit 1
fi
# go mod tidy -diff prints the diff and fails when tidy would change a file.
if ! go mod tidy -diff; then
  echo "go.mod or go.sum is not tidy: run go mod tidy" >&2
  exit 1
fi
go vet ./...
go vet -tags integration ./test/...
go vet -tags e2e ./test/...
# Deprecation warnings (SA1019) are left out: core/v1 Endpoints is deprecated
# upstream but still served and used by kubectl.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -checks 'all,-SA1019,-ST1000,-ST1003,-ST1020,-ST1021,-ST1022' ./...
