package pods

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ServiceSource lists the cluster's services, for the environment
// variables a container gets of each (the kubelet's service links).
type ServiceSource interface {
	// Services returns every service, waiting until they have been read
	// once (a container never starts without them); an error when ctx
	// ends first.
	Services(ctx context.Context) ([]*v1.Service, error)
}

// servicesEnv is serviceEnv of the Manager's services; none without a
// source (unit tests).
func (m *Manager) servicesEnv(ctx context.Context, pod *v1.Pod) (map[string]string, error) {
	if m.cfg.Services == nil {
		return nil, nil
	}
	all, err := m.cfg.Services.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("services for the environment: %w", err)
	}
	return serviceEnv(pod, all), nil
}

// serviceEnv is the kubelet's environment for the services a pod sees:
// those of its namespace when enableServiceLinks is on (the default), and
// always `kubernetes` of the default namespace. Services without a
// cluster IP (headless, ExternalName) have none.
func serviceEnv(pod *v1.Pod, services []*v1.Service) map[string]string {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	seen := map[string]*v1.Service{}
	for _, svc := range services {
		if ip := svc.Spec.ClusterIP; ip == "" || ip == v1.ClusterIPNone {
			continue
		}
		switch {
		case svc.Namespace == "default" && svc.Name == "kubernetes":
			if _, ok := seen[svc.Name]; !ok {
				seen[svc.Name] = svc
			}
		case svc.Namespace == pod.Namespace && links:
			seen[svc.Name] = svc
		}
	}
	env := map[string]string{}
	for _, svc := range seen {
		for _, e := range serviceVars(svc) {
			env[e.name] = e.value
		}
	}
	return env
}

// serviceVars are one service's variables: {NAME}_SERVICE_HOST and
// _SERVICE_PORT (and _SERVICE_PORT_{PORT NAME}), and Docker's link
// variables ({NAME}_PORT, {NAME}_PORT_{port}_{PROTO}...).
func serviceVars(svc *v1.Service) []envVar {
	if len(svc.Spec.Ports) == 0 {
		return nil
	}
	prefix := envName(svc.Name)
	ip := svc.Spec.ClusterIP
	out := []envVar{
		{prefix + "_SERVICE_HOST", ip},
		{prefix + "_SERVICE_PORT", strconv.Itoa(int(svc.Spec.Ports[0].Port))},
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Name != "" {
			out = append(out, envVar{prefix + "_SERVICE_PORT_" + envName(sp.Name), strconv.Itoa(int(sp.Port))})
		}
	}
	for i, sp := range svc.Spec.Ports {
		proto := strings.ToLower(string(sp.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		url := fmt.Sprintf("%s://%s", proto, net.JoinHostPort(ip, strconv.Itoa(int(sp.Port))))
		if i == 0 {
			out = append(out, envVar{prefix + "_PORT", url})
		}
		p := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
		out = append(out,
			envVar{p, url},
			envVar{p + "_PROTO", proto},
			envVar{p + "_PORT", strconv.Itoa(int(sp.Port))},
			envVar{p + "_ADDR", ip},
		)
	}
	return out
}

func envName(s string) string { return strings.ToUpper(strings.ReplaceAll(s, "-", "_")) }
