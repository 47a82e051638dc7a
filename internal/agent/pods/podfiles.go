package pods

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// hostsContent is the /etc/hosts the kubelet gives a pod on the pod
// network: localhost, the pod's own name at its IPs, and hostAliases.
func hostsContent(pod *v1.Pod, podIPs []string, clusterDomain string) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	hostname := podHostname(pod)
	for _, ip := range podIPs {
		if pod.Spec.Subdomain != "" && clusterDomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.%s\t%s\n", ip, hostname, pod.Spec.Subdomain, pod.Namespace, clusterDomain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// writeHosts keeps the pod's hosts file current and returns its path, or
// "" for host-network pods (they see the node's). It is rewritten in
// place: containers bind-mount the file, and a rename would leave them
// with the old one.
func (m *Manager) writeHosts(pod *v1.Pod, podIPs []string) (string, error) {
	if pod.Spec.HostNetwork || len(podIPs) == 0 {
		return "", nil
	}
	path := m.layout.hostsFile(pod.UID)
	want := hostsContent(pod, podIPs, m.cfg.ClusterDomain)
	got, err := os.ReadFile(path)
	if err == nil && bytes.Equal(got, want) {
		return path, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("hosts file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("hosts file: %w", err)
	}
	if err := os.WriteFile(path, want, 0o644); err != nil {
		return "", fmt.Errorf("hosts file: %w", err)
	}
	return path, nil
}

// Limits of termination messages, as the kubelet's.
const (
	maxMessageBytes  = 4096
	fallbackLogLines = 80
	fallbackLogBytes = 2048
)

// terminationMessage returns, for pod's exited containers, the runtime's
// message followed by what the container wrote to its
// terminationMessagePath (or, with FallbackToLogsOnError after a failure,
// the tail of its log). Exited containers never change, so each is read
// once.
func (m *Manager) terminationMessage(pod *v1.Pod) func(c *container) string {
	return func(c *container) string {
		if c.termRead {
			return c.termMessage
		}
		msg := c.message
		written := readLimited(m.layout.terminationFile(pod.UID, c.name, c.attempt), maxMessageBytes)
		if written == "" && c.exitCode != 0 &&
			c.annotations[annotationTerminationMessagePolicy] == string(v1.TerminationMessageFallbackToLogsOnError) {
			logPath := c.logPath
			if logPath == "" {
				logPath = filepath.Join(m.layout.podLogDir(pod.Namespace, pod.Name, pod.UID), containerLogPath(c.name, c.attempt))
			}
			written = logTail(logPath)
		}
		if written != "" {
			if msg != "" {
				msg += ": "
			}
			msg += written
		}
		c.termMessage, c.termRead = msg, true
		return msg
	}
}

func readLimited(path string, limit int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, limit))
	return string(data)
}

// logTail is the last lines of a CRI-format log ("<time> <stream> <P|F>
// <text>"), joined back into the container's output.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	// The tail of the file is enough for 80 short lines.
	const window = 64 * 1024
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(fi.Size()-window, io.SeekStart)
	}
	var lines []string
	var partial strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), window)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), " ", 4)
		if len(fields) < 3 {
			continue
		}
		text := ""
		if len(fields) == 4 {
			text = fields[3]
		}
		partial.WriteString(text)
		if fields[2] == "P" {
			continue
		}
		lines = append(lines, partial.String())
		partial.Reset()
	}
	if len(lines) > fallbackLogLines {
		lines = lines[len(lines)-fallbackLogLines:]
	}
	out := []byte(strings.Join(lines, "\n"))
	if len(out) > fallbackLogBytes {
		out = out[len(out)-fallbackLogBytes:]
	}
	return string(bytes.TrimRight(out, "\n"))
}
