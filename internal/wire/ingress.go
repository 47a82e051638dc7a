package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// IngressPortsAnnotation on a Node says where its agent's ingress proxy
// listens: "<http port>,<https port>", 0 for one not served. The server's
// ingress controller sends the ingress load balancer address's traffic
// there.
const IngressPortsAnnotation = "wharf.dev/ingress-ports"

// IngressPorts formats IngressPortsAnnotation's value.
func IngressPorts(http, https int) string { return strconv.Itoa(http) + "," + strconv.Itoa(https) }

// ParseIngressPorts reads IngressPortsAnnotation's value.
func ParseIngressPorts(v string) (http, https int, err error) {
	a, b, ok := strings.Cut(v, ",")
	if ok {
		if http, err = strconv.Atoi(a); err == nil {
			https, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || http < 0 || http > 65535 || https < 0 || https > 65535 {
		return 0, 0, fmt.Errorf("ingress ports %q: want <http port>,<https port>", v)
	}
	return http, https, nil
}
