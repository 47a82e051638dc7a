#!/usr/bin/env bash
# Runs every benchmark and prints the figures (recorded in docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== $(date -u +%FT%TZ) on $(nproc) CPUs, $(uname -r)"
bin/wharf bench scheduler --log-level error
bin/wharf bench api --log-level error
bin/wharf bench rss --log-level error
bin/wharf bench jobs --log-level error
bin/wharf bench statefulset --log-level error
bin/wharf bench backup --log-level error
if [ "$(id -u)" -eq 0 ]; then
  bin/wharf bench up --log-level error
  bin/wharf bench pods --log-level error
  bin/wharf bench cluster --log-level error
  bin/wharf bench services --log-level error
else
  echo "bench up / bench pods: skipped, they need root (they run wharf up)"
fi
