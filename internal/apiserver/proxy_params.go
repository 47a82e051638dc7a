package apiserver

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// defaultContainerAnnotation names the container kubectl and this server
// pick when a request names none (KEP 2227).
const defaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// agentRequest translates a connect request's query into the agent's path
// and query, the way kube-apiserver builds its kubelet URLs: the container
// is defaulted and checked, booleans of exec become "1", log options are
// validated. Bad input is a 400 here rather than an error from the node.
func agentRequest(pod *corev1.Pod, subresource string, q url.Values) (string, url.Values, error) {
	ns, name := url.PathEscape(pod.Namespace), url.PathEscape(pod.Name)
	out := url.Values{}
	switch subresource {
	case "portforward":
		if ports, ok := q["ports"]; ok {
			out["ports"] = ports
		}
		return "/portForward/" + ns + "/" + name, out, nil
	case "log", "exec", "attach":
	default:
		return "", nil, apierrors.NewNotFound(corev1.Resource("pods/"+subresource), pod.Name)
	}
	container, err := containerFor(pod, q.Get("container"))
	if err != nil {
		return "", nil, err
	}
	c := url.PathEscape(container)
	switch subresource {
	case "log":
		if err := logQuery(q, out); err != nil {
			return "", nil, err
		}
		return "/containerLogs/" + ns + "/" + name + "/" + c, out, nil
	case "exec":
		cmd := q["command"]
		if len(cmd) == 0 {
			return "", nil, apierrors.NewBadRequest("you must specify at least one command for the container")
		}
		out["command"] = cmd
	}
	for _, k := range []string{"stdin", "stdout", "stderr", "tty"} {
		on, err := boolParam(q, k)
		if err != nil {
			return "", nil, err
		}
		if on {
			out.Set(k, "1") // the agent's streaming server reads "1" only
		}
	}
	return "/" + subresource + "/" + ns + "/" + name + "/" + c, out, nil
}

// containerFor returns the container a request is about: the one named,
// else the only one, else the annotated default.
func containerFor(pod *corev1.Pod, name string) (string, error) {
	var names, inits []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		inits = append(inits, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		inits = append(inits, c.Name)
	}
	if name == "" {
		if d := pod.Annotations[defaultContainerAnnotation]; slices.Contains(names, d) {
			return d, nil
		}
		if len(names) == 1 {
			return names[0], nil
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names)
		if len(inits) > 0 {
			msg += fmt.Sprintf(" or one of the init containers: %v", inits)
		}
		return "", apierrors.NewBadRequest(msg)
	}
	if !slices.Contains(names, name) && !slices.Contains(inits, name) {
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	return name, nil
}

// logQuery copies corev1.PodLogOptions' parameters, checked as Kubernetes
// validates them.
func logQuery(q, out url.Values) error {
	for _, k := range []string{"follow", "previous", "timestamps"} {
		on, err := boolParam(q, k)
		if err != nil {
			return err
		}
		if on {
			out.Set(k, "true")
		}
	}
	for _, p := range []struct {
		key string
		min int64
	}{{"tailLines", 0}, {"sinceSeconds", 1}, {"limitBytes", 1}} {
		v := q.Get(p.key)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < p.min {
			return apierrors.NewBadRequest(fmt.Sprintf("%s: %q must be an integer of at least %d", p.key, v, p.min))
		}
		out.Set(p.key, strconv.FormatInt(n, 10))
	}
	if v := q.Get("sinceTime"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return apierrors.NewBadRequest(fmt.Sprintf("sinceTime: %q is not an RFC 3339 time", v))
		}
		if out.Has("sinceSeconds") {
			return apierrors.NewBadRequest("at most one of sinceTime or sinceSeconds may be specified")
		}
		out.Set("sinceTime", v)
	}
	return nil
}

// boolParam reads a boolean query parameter: "true"/"false" from
// client-go's parameter codec, "1"/"0" from older clients.
func boolParam(q url.Values, key string) (bool, error) {
	v := q.Get(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, apierrors.NewBadRequest(fmt.Sprintf("%s: %q is not a boolean", key, v))
	}
	return b, nil
}
