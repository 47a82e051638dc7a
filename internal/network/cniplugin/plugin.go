// Package cniplugin is wharf-cni, the CNI plugin containerd executes for
// every pod sandbox (cmd/wharf-cni): it sets up the sandbox's loopback
// interface itself and forwards the pod network's requests over a unix
// socket to the node's agent, which does the work in-process (package
// podnet).
//
// containerd runs a CNI plugin for each attachment of each sandbox, so
// the plugin must start fast and small: it imports nothing but the
// standard library (about 2 MB, ~1 ms to start), where the wharf binary
// takes 20-40 ms and 50 MB to start, and Debian's plugins took four
// executions per pod (bridge, host-local, portmap, loopback).
package cniplugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// Type is the plugin's type in a conflist; LoopbackType is the type
// containerd's CRI plugin asks for the loopback interface.
const (
	Type         = "wharf"
	LoopbackType = "loopback"
)

// SupportedVersions are the CNI versions the plugin speaks. The agent's
// conflist uses the newest; containerd 1.6 configures loopback with 0.3.1.
var SupportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0"}

// CNI error codes (CNI spec, "Error").
const (
	CodeIncompatibleVersion = 1
	CodeInvalidEnvironment  = 4
	CodeDecodingFailure     = 6
	CodeInvalidConfig       = 7
	CodeTryAgainLater       = 11
	// CodeAgent reports a failure the agent returned; plugin-specific
	// codes start at 100.
	CodeAgent = 100
)

// requestTimeout bounds one request to the agent: an ADD takes a few
// milliseconds, much longer only on an overloaded node.
const requestTimeout = 2 * time.Minute

// Request is what the plugin sends to the agent: the CNI environment and
// the network configuration containerd gave on stdin.
type Request struct {
	Command     string          `json:"command"`
	ContainerID string          `json:"containerID"`
	NetNS       string          `json:"netns"`
	IfName      string          `json:"ifName"`
	Args        string          `json:"args,omitempty"`
	Config      json.RawMessage `json:"config"`
}

// Response is the agent's answer: the CNI result to print, or an error.
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is a CNI error, printed as the spec says.
type Error struct {
	CNIVersion string `json:"cniVersion,omitempty"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Details == "" {
		return e.Msg
	}
	return e.Msg + ": " + e.Details
}

// NetConf is the part of the network configuration the plugin and the
// agent read.
type NetConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	// Socket is the agent's socket (type wharf).
	Socket string `json:"socket,omitempty"`
	// Bridge and Subnet describe the node's pod network, for people and
	// for cleanup tools; the agent has its own configuration.
	Bridge        string `json:"bridge,omitempty"`
	Subnet        string `json:"subnet,omitempty"`
	RuntimeConfig struct {
		PortMappings []PortMapping `json:"portMappings,omitempty"`
	} `json:"runtimeConfig,omitempty"`
}

// PortMapping is one hostPort, as containerd passes it (capability
// portMappings).
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Run is the plugin: env is the process environment, stdin the network
// configuration. It prints the result, or a CNI error, on stdout; an error
// return means the process must exit non-zero.
func Run(env []string, stdin io.Reader, stdout io.Writer) error {
	result, err := run(environ(env), stdin)
	if err != nil {
		var cniErr *Error
		if !errors.As(err, &cniErr) {
			cniErr = &Error{Code: CodeAgent, Msg: err.Error()}
		}
		if cniErr.CNIVersion == "" {
			cniErr.CNIVersion = SupportedVersions[len(SupportedVersions)-1]
		}
		json.NewEncoder(stdout).Encode(cniErr)
		return cniErr
	}
	_, err = stdout.Write(result)
	return err
}

func run(env map[string]string, stdin io.Reader) ([]byte, error) {
	cmd := env["CNI_COMMAND"]
	if cmd == "VERSION" {
		return json.Marshal(map[string]any{"cniVersion": SupportedVersions[len(SupportedVersions)-1], "supportedVersions": SupportedVersions})
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return nil, &Error{Code: CodeDecodingFailure, Msg: "read network configuration", Details: err.Error()}
	}
	var conf NetConf
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, &Error{Code: CodeDecodingFailure, Msg: "decode network configuration", Details: err.Error()}
	}
	if !supported(conf.CNIVersion) {
		return nil, &Error{CNIVersion: conf.CNIVersion, Code: CodeIncompatibleVersion, Msg: fmt.Sprintf("CNI version %q not supported", conf.CNIVersion)}
	}
	req := Request{
		Command:     cmd,
		ContainerID: env["CNI_CONTAINERID"],
		NetNS:       env["CNI_NETNS"],
		IfName:      env["CNI_IFNAME"],
		Args:        env["CNI_ARGS"],
		Config:      raw,
	}
	if err := req.validate(); err != nil {
		return nil, &Error{CNIVersion: conf.CNIVersion, Code: CodeInvalidEnvironment, Msg: err.Error()}
	}
	switch conf.Type {
	case LoopbackType:
		return loopback(req, conf)
	case Type:
		return forward(req, conf)
	}
	return nil, &Error{CNIVersion: conf.CNIVersion, Code: CodeInvalidConfig, Msg: fmt.Sprintf("plugin type %q: wharf-cni is %q or %q", conf.Type, Type, LoopbackType)}
}

// validate checks what each command needs (CNI spec, "Parameters").
func (r Request) validate() error {
	switch r.Command {
	case "ADD", "CHECK":
		if r.NetNS == "" {
			return errors.New("CNI_NETNS is required")
		}
	case "DEL":
	default:
		return fmt.Errorf("CNI_COMMAND %q is none of ADD, DEL, CHECK, VERSION", r.Command)
	}
	if r.ContainerID == "" || r.IfName == "" {
		return errors.New("CNI_CONTAINERID and CNI_IFNAME are required")
	}
	return nil
}

// forward sends the request to the agent and returns its result. A DEL
// that finds no agent succeeds: the node is being torn down (wharf down,
// host deletion), and the agent forgets the sandbox's address and
// hostPorts at its next start, when it finds no such sandbox.
func forward(req Request, conf NetConf) ([]byte, error) {
	if conf.Socket == "" {
		return nil, &Error{CNIVersion: conf.CNIVersion, Code: CodeInvalidConfig, Msg: "no agent socket in the network configuration"}
	}
	resp, err := Call(conf.Socket, req)
	if err != nil {
		if req.Command == "DEL" && agentAbsent(err) {
			return nil, nil
		}
		return nil, &Error{CNIVersion: conf.CNIVersion, Code: CodeTryAgainLater, Msg: "wharf agent unreachable", Details: err.Error()}
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Result, nil
}

// Call sends one request to the agent's socket and reads its response.
func Call(socket string, req Request) (*Response, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(requestTimeout))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, fmt.Errorf("send to %s: %w", socket, err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		return nil, fmt.Errorf("response from %s: %w", socket, err)
	}
	return &resp, nil
}

// agentAbsent says whether err means nobody listens on the socket.
func agentAbsent(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

func supported(version string) bool {
	for _, v := range SupportedVersions {
		if v == version {
			return true
		}
	}
	return false
}

func environ(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
