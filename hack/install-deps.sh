#!/usr/bin/env bash
# Installs what building, testing and running Wharf need on a Debian machine.
# Safe to run again: it only installs what is missing. Go modules come
# through `go` itself.
set -euo pipefail

packages=(containerd runc crun busybox-static iproute2 iptables nftables procps psmisc curl openssh-server sudo dnsperf nginx wrk e2fsprogs mount fio etcd-server)

command -v go >/dev/null || { echo "install-deps: Go is missing (expected /usr/local/go/bin/go on PATH)" >&2; exit 1; }

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Debian packages start a system containerd and nginx; Wharf runs its
# own containerd per host, and the ingress benchmark its own nginx (as the
# peer it compares with), on ports of its choosing.
for unit in containerd nginx; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done
if [ -f /run/nginx.pid ] && ! command -v systemctl >/dev/null; then
  nginx -s quit 2>/dev/null || true
fi
# etcd-server is only the external etcd the integration tests start on
# ports of their own; its packaged service would hold 2379/2380.
# (The init script stops only the pid in its own pid file.)
if [ "$(id -u)" -eq 0 ]; then
  if command -v systemctl >/dev/null && systemctl is-enabled --quiet etcd 2>/dev/null; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  if [ -x /etc/init.d/etcd ]; then
    /etc/init.d/etcd stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null; then update-rc.d etcd disable >/dev/null 2>&1 || true; fi
  fi
fi

# Helm 4 is built from the Go module proxy (there is no Debian package);
# the integration tests look for it at this path. `go version -m` tells
# the module version, which `helm version` reports without its patch level.
helm_version=v4.3.2
helm_dir=/usr/local/lib/wharf-tools
if ! go version -m "$helm_dir/helm" 2>/dev/null | grep -q "mod[[:space:]]*helm.sh/helm/v4[[:space:]]*$helm_version[[:space:]]"; then
  echo "install-deps: building helm $helm_version into $helm_dir"
  mkdir -p "$helm_dir"
  (cd / && GOFLAGS=-mod=mod GOBIN="$helm_dir" go install "helm.sh/helm/v4/cmd/helm@$helm_version")
fi

if ! command -v kubectl >/dev/null; then
  echo "install-deps: warning: kubectl is not on PATH; the end-to-end tests that use it will be skipped" >&2
fi
go mod download
