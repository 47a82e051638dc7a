#!/usr/bin/env bash
# The demo: a Wharf server, two simulated nodes, the hello deployment
# scheduled across them, scaled, then deleted. Everything stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

dir=$(mktemp -d /tmp/wharf-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

step "Starting wharf server (data in $dir)"
bin/wharf server --data-dir "$dir" --listen 127.0.0.1:0 2>"$dir/server.log" &
pids+=($!)
for _ in $(seq 1 300); do
  grep -q "wharf server ready" "$dir/server.log" 2>/dev/null && break
  sleep 0.1
done
grep "wharf server ready" "$dir/server.log" || { cat "$dir/server.log"; exit 1; }
export KUBECONFIG=$dir/admin.kubeconfig

step "Registering two simulated nodes (real hosts run 'wharf agent', next)"
bin/wharf sim-nodes --count 2 --prefix node 2>"$dir/sim.log" &
pids+=($!)
for _ in $(seq 1 100); do
  [ "$(kubectl get nodes --no-headers 2>/dev/null | grep -c ' Ready')" -ge 2 ] && break
  sleep 0.1
done
kubectl get nodes -o wide

step "kubectl apply -f examples/hello/deployment.yaml"
kubectl apply -f examples/hello/deployment.yaml
kubectl rollout status deployment/hello --timeout=60s
kubectl get pods -o wide

step "kubectl scale deployment hello --replicas 5"
kubectl scale deployment hello --replicas 5
kubectl rollout status deployment/hello --timeout=60s
kubectl get pods -o wide

step "kubectl describe deployment hello (events from the controllers)"
kubectl describe deployment hello | sed -n '/^Events:/,$p'

step "kubectl delete deployment hello (its replica set and pods go too)"
kubectl delete deployment hello
for _ in $(seq 1 100); do
  [ -z "$(kubectl get pods -l app=hello --no-headers 2>/dev/null)" ] && break
  sleep 0.1
done
kubectl get deployments,replicasets,pods

step "Done"
cat <<'EOT'
To go on by hand:
  make build
  ./bin/wharf server --data-dir /tmp/w1 --listen 127.0.0.1:6443 &
  export KUBECONFIG=/tmp/w1/admin.kubeconfig
  ./bin/wharf sim-nodes --count 2 &
  kubectl apply -f examples/hello/deployment.yaml
EOT
