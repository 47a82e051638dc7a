package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/coe"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/provider/ssh"
	"wharf.dev/wharf/internal/wire"
)

// runClusterController is the service's cluster controller
// (controlplane.Options.ServiceController) with its providers: local
// (network namespaces on this machine), and ssh, made per template from
// the machines and key it names.
func runClusterController(ctx context.Context, env wire.ServiceEnv) error {
	lp, err := local.New(local.Config{StateDir: env.HostsDir, Network: env.ProviderNetwork, Logger: env.Logger.With("provider", "local")})
	if err != nil {
		return err
	}
	// The bridge now, so the service address exists before the first host.
	if err := lp.EnsureNetwork(ctx); err != nil {
		return err
	}
	cfg, err := coe.ConfigFromService(env, map[string]provider.Provider{"local": lp})
	if err != nil {
		return err
	}
	sshp := &sshProviders{
		kube: cfg.Kube, log: env.Logger.With("provider", "ssh"),
		// One state dir for every ssh provider: two templates naming the
		// same machine must not hand it out twice.
		stateDir: filepath.Join(filepath.Dir(env.HostsDir), "ssh"),
		made:     map[string]*ssh.Provider{},
	}
	defer sshp.close()
	cfg.ProviderFor = sshp.forTemplate
	return coe.New(cfg).Run(ctx)
}

// sshProviders makes and keeps one ssh provider per machine list and key.
type sshProviders struct {
	kube     kubernetes.Interface
	log      *slog.Logger
	stateDir string
	mu       sync.Mutex
	made     map[string]*ssh.Provider
}

func (s *sshProviders) forTemplate(ctx context.Context, namespace string, t wharfv1.ClusterTemplateSpec) (provider.Provider, error) {
	if t.Provider != "ssh" || t.SSH == nil {
		return nil, fmt.Errorf("provider %q is not configured in this service", t.Provider)
	}
	key, err := s.secretKey(ctx, namespace, t.SSH.KeySecret, "ssh-privatekey")
	if err != nil {
		return nil, err
	}
	var known []byte
	if t.SSH.KnownHostsSecret != "" {
		if known, err = s.secretKey(ctx, namespace, t.SSH.KnownHostsSecret, "known_hosts"); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(t.SSH.Hosts, ",") + "\x00" + t.SSH.User + "\x00" + string(key) + "\x00" + string(known)))
	id := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.made[id]; ok {
		return p, nil
	}
	p, err := ssh.New(ssh.Config{Hosts: t.SSH.Hosts, User: t.SSH.User, Key: key, KnownHosts: known, StateDir: s.stateDir, Logger: s.log.With("hosts", t.SSH.Hosts)})
	if err != nil {
		return nil, err
	}
	s.made[id] = p
	return p, nil
}

func (s *sshProviders) secretKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	sec, err := s.kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("ssh provider: secret %s/%s: %w", namespace, name, err)
	}
	v, ok := sec.Data[key]
	if !ok {
		return nil, fmt.Errorf("ssh provider: secret %s/%s has no %q key", namespace, name, key)
	}
	return v, nil
}

func (s *sshProviders) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.made {
		p.Close()
	}
}
