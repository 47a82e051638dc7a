#!/usr/bin/env bash
# gofmt, go vet (with the integration tag, so those tests are checked too).
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l cmd internal test 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" $unformatted >&2
  exit 1
fi
go vet ./...
go vet -tags integration ./test/...
