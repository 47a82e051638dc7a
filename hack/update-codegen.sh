#!/usr/bin/env bash
# Regenerates zz_generated.deepcopy.go for the project's own API types.
set -euo pipefail
cd "$(dirname "$0")/.."
go run k8s.io/code-generator/cmd/deepcopy-gen@v0.37.2 \
  --output-file zz_generated.deepcopy.go \
  --go-header-file /dev/null \
  ./internal/apis/wharf/v1
