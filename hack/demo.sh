#!/usr/bin/env bash
# The demo: the cluster service on this machine, a cluster of three hosts
# (1 master + 2 nodes, each host a network namespace with its own
# containerd), the hello app spread over the nodes, and one pod answering
# another across hosts. The service and the cluster stay up; running it
# again reuses them.
#
# Environment: WHARF_SERVICE_STATE_DIR (default /var/lib/wharf-service),
# WHARF_SERVICE_LISTEN (default: 0.0.0.0:7443 if free, else a free port),
# WHARF_DNS_NAMESERVER (the template's resolver for pods; default: this
# machine's /etc/resolv.conf; tests say "none"), WHARF_BIN (default
# bin/wharf). Another service or `wharf up` on this machine is no
# obstacle: the service claims a network, bridge and port of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
state=${WHARF_SERVICE_STATE_DIR:-/var/lib/wharf-service}
wharf=${WHARF_BIN:-bin/wharf}
export WHARF_SERVICE_KUBECONFIG=$state/admin.kubeconfig

listen=()
[ -n "${WHARF_SERVICE_LISTEN:-}" ] && listen=(--listen "$WHARF_SERVICE_LISTEN")
step "wharf service start --state-dir $state ${listen[*]}"
$wharf service start --state-dir "$state" "${listen[@]}"

if ! $wharf cluster template show k8s-local >/dev/null 2>&1; then
  dns=()
  [ -n "${WHARF_DNS_NAMESERVER:-}" ] && dns=(--dns-nameserver "$WHARF_DNS_NAMESERVER")
  step "wharf cluster template create k8s-local --coe kubernetes --provider local ${dns[*]}"
  $wharf cluster template create k8s-local --coe kubernetes --provider local "${dns[@]}"
fi

if $wharf cluster show demo >/dev/null 2>&1; then
  step "cluster demo exists: reusing it"
else
  step "wharf cluster create demo --template k8s-local --master-count 1 --node-count 2 --wait"
  $wharf cluster create demo --template k8s-local --master-count 1 --node-count 2 --wait
fi

step "wharf cluster list"
$wharf cluster list

step "wharf cluster show demo"
$wharf cluster show demo

export KUBECONFIG=$state/demo.kubeconfig
step "wharf cluster config demo > $KUBECONFIG"
$wharf cluster config demo > "$KUBECONFIG"

step "kubectl get nodes -o wide"
kubectl get nodes -o wide

step "kubectl apply -f examples/hello/"
kubectl apply -f examples/hello/
kubectl rollout status deployment/hello --timeout=120s

step "kubectl get pods -o wide"
kubectl get pods -o wide -l app=hello

# Two hello pods on different nodes: one asks the other by pod IP.
hello_pods() {
  kubectl get pods -l app=hello \
    -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP}{"\n"}{end}' |
    awk '!seen[$2]++ {printf "%s %s %s ", $1, $2, $3} END {print ""}'
}
# A reused cluster whose hosts were just resumed (the machine restarted)
# reports its pods' old status, and old IPs, until each agent has
# restarted them: retry, reading the IPs again each time.
retry() {
  for _ in $(seq 60); do
    "$@" && return 0
    sleep 1
  done
  "$@"
}
pod_to_pod() {
  read -r a anode aip b bnode bip < <(hello_pods)
  kubectl exec "$a" -- wget -qO- "http://$bip:8080/"
}
read -r a anode aip b bnode bip < <(hello_pods)
if [ -n "${bip:-}" ]; then
  step "kubectl exec $a -- wget -qO- http://$bip:8080/   ($anode -> $bnode, pod to pod across hosts)"
  retry pod_to_pod
  echo
  step "kubectl exec $a -- wget -qO- http://hello/   (the hello Service by name: the node's DNS and proxy)"
  retry kubectl exec "$a" -- wget -qO- "http://hello/"
  echo
else
  step "the hello pods all run on $anode; scale up to see pods talk across hosts"
fi

# Outside the cluster: a LoadBalancer address of the cluster's block,
# held by one of its hosts, answering this machine's own shell.
step "kubectl expose deploy/hello --name hello-lb --type LoadBalancer --port 80 --target-port 8080"
kubectl get svc hello-lb >/dev/null 2>&1 ||
  kubectl expose deploy/hello --name hello-lb --type LoadBalancer --port 80 --target-port 8080
lb_ip() { kubectl get svc hello-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}'; }
for _ in $(seq 50); do
  [ -n "$(lb_ip)" ] && break
  sleep 0.2
done
kubectl get svc hello-lb
if ip=$(lb_ip) && [ -n "$ip" ]; then
  step "curl http://$ip/   (from this machine, through the load balancer address)"
  retry curl -sS --max-time 2 "http://$ip/"
  echo
else
  echo "hello-lb has no address (kubectl describe svc hello-lb says why; a cluster made"
  echo "before load balancer blocks existed gets one once its hosts run this version)"
fi

step "The cluster is up. To go on:"
cat <<EOT
  export KUBECONFIG=$KUBECONFIG
  export WHARF_SERVICE_KUBECONFIG=$WHARF_SERVICE_KUBECONFIG
  kubectl logs deploy/hello -f
  $wharf cluster resize demo 4 --wait              # two more hosts
  $wharf cluster resize demo 2 --nodes-to-remove demo-node-1 --wait
  $wharf cluster delete demo --wait                # every host and trace of it
  $wharf service stop --state-dir $state --purge
EOT
