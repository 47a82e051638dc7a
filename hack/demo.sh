#!/usr/bin/env bash
# The demo: a one-node Wharf cluster on this machine (real containerd), the
# hello app on it, and one pod's answer over HTTP. The cluster stays up.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
state=${WHARF_STATE_DIR:-/var/lib/wharf}
export KUBECONFIG=$state/server/admin.kubeconfig

step "wharf up --state-dir $state"
bin/wharf up --state-dir "$state"

step "kubectl get nodes -o wide"
kubectl get nodes -o wide

step "kubectl apply -f examples/hello/"
kubectl apply -f examples/hello/
kubectl rollout status deployment/hello --timeout=120s

step "kubectl get pods -o wide"
kubectl get pods -o wide -l app=hello

ip=$(kubectl get pods -l app=hello -o jsonpath='{.items[0].status.podIP}')
step "curl http://$ip:8080/   (a pod, straight from this host)"
curl -s --max-time 5 "http://$ip:8080/"
echo

step "The cluster is up. To go on:"
cat <<EOT
  export KUBECONFIG=$KUBECONFIG
  kubectl logs deploy/hello -f
  kubectl exec -it deploy/hello -- sh
  kubectl scale deployment hello --replicas 5
  bin/wharf down --state-dir $state            # stop it (data kept)
  bin/wharf down --state-dir $state --purge    # remove every trace
EOT
