package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/vip"
	"wharf.dev/wharf/internal/wire"
)

// A server with Options.EtcdPeerAddress is one master of several
// (docs/ha.md): its embedded etcd member serves peers and clients with
// TLS from the cluster CA, joins a running cluster through another
// server's API on its first start (as a learner, promoted once it has
// caught up), and the server whose member leads holds the cluster's
// virtual API address.

// ErrRestart: the server stopped to start again in the same process (a
// member made the only member of a new cluster); Wait returns it and the
// caller calls Start again.
var ErrRestart = errors.New("server restarting")

// forceNewClusterMarker in the data dir asks the next start to make the
// member the only one of a new cluster: written before the restart, so a
// crash in between still recovers, and removed once etcd runs.
const forceNewClusterMarker = "etcd-force-new-cluster"

// openMember starts the embedded member of a multi-master cluster.
func (s *Server) openMember(ctx context.Context, adminToken string) error {
	o := s.opts
	host, portText, err := net.SplitHostPort(o.EtcdPeerAddress)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || host == "" || port < 2 {
		return fmt.Errorf("etcd peer address %q: want host:port", o.EtcdPeerAddress)
	}
	certDir := filepath.Join(o.DataDir, "pki")
	certFile, keyFile, err := s.ca.EnsurePeer(certDir, "etcd-member", []string{host, "127.0.0.1", "localhost"})
	if err != nil {
		return fmt.Errorf("etcd member certificate: %w", err)
	}
	name := o.EtcdName
	if name == "" {
		name = host
	}
	dir := filepath.Join(o.DataDir, "etcd")
	cfg := storage.EmbeddedConfig{
		Dir: dir, Name: name,
		PeerURL:         "https://" + o.EtcdPeerAddress,
		ClientURL:       "https://" + net.JoinHostPort(host, strconv.Itoa(port-1)),
		TLS:             &storage.MemberTLS{CertFile: certFile, KeyFile: keyFile, CAFile: filepath.Join(certDir, "ca.crt")},
		ElectionTimeout: o.EtcdElectionTimeout,
		UnsafeNoFsync:   o.UnsafeNoFsync,
	}
	_, statErr := os.Stat(filepath.Join(dir, "member"))
	fresh := errors.Is(statErr, os.ErrNotExist)
	marker := filepath.Join(o.DataDir, forceNewClusterMarker)
	_, markErr := os.Stat(marker)
	cfg.ForceNewCluster = markErr == nil && !fresh
	peers := &peerClient{urls: o.Join, token: adminToken, tls: &tls.Config{RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12}}
	join := wire.EtcdJoinRequest{Name: name, PeerURL: cfg.PeerURL}
	if fresh && len(o.Join) > 0 {
		var resp wire.EtcdJoinResponse
		if err := peers.retry(ctx, s, wire.EtcdMembersPath, join, &resp); err != nil {
			return fmt.Errorf("join the etcd cluster through %v: %w", o.Join, err)
		}
		cfg.InitialCluster, cfg.Join = resp.InitialCluster, true
		s.log.Info("joining the etcd cluster", "member", name, "id", resp.ID, "initial-cluster", resp.InitialCluster)
	}
	if cfg.ForceNewCluster {
		s.log.Warn("restarting the etcd member as the only member of a new cluster, with its data", "member", name)
	}
	e, err := storage.StartEmbedded(ctx, s.log, cfg)
	if err != nil {
		return err
	}
	s.etcd, s.client = e, e.Client
	if cfg.ForceNewCluster {
		os.Remove(marker)
	}
	if cfg.Join {
		// A learner serves no linearizable reads: the API waits for it.
		if err := peers.retry(ctx, s, wire.EtcdPromotePath, join, nil); err != nil {
			return fmt.Errorf("promote etcd member %s: %w", name, err)
		}
		// The leader has promoted it; the member itself applies that a
		// moment later, and serves the API's reads only then.
		for deadline := time.Now().Add(10 * time.Second); e.Status().Learner && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		s.log.Info("etcd member promoted to voter", "member", name)
	}
	return nil
}

// peerClient calls the member endpoints of the servers a new master joins
// through, with the cluster's admin token.
type peerClient struct {
	urls  []string
	token string
	tls   *tls.Config
}

// retry posts req to path on each server in turn until one answers 2xx,
// or ctx ends. Any failure is worth retrying: a cluster being made answers
// once its first master is up, a learner is promoted once it caught up.
func (p *peerClient) retry(ctx context.Context, s *Server, path string, req, resp any) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: p.tls}}
	defer hc.CloseIdleConnections()
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var last error
	logged := time.Time{}
	for {
		for _, u := range p.urls {
			err := p.post(ctx, hc, u+path, body, resp)
			if err == nil {
				return nil
			}
			last = err
		}
		if time.Since(logged) > 5*time.Second {
			s.log.Info("waiting for the cluster's servers", "path", path, "err", last)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *peerClient) post(ctx context.Context, hc *http.Client, url string, body []byte, resp any) error {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+p.token)
	r.Header.Set("Content-Type", "application/json")
	res, err := hc.Do(r)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", url, res.Status, bytes.TrimSpace(data))
	}
	if resp == nil {
		return nil
	}
	return json.Unmarshal(data, resp)
}

// memberRoutes serve the member endpoints of package wire.
func (s *Server) memberRoutes() []apiserver.Route {
	return []apiserver.Route{
		{Pattern: wire.EtcdStatusPath, Handler: s.mastersOnly(http.MethodGet, s.serveEtcdStatus)},
		{Pattern: wire.EtcdMembersPath, Handler: s.mastersOnly(http.MethodPost, s.serveEtcdJoin)},
		{Pattern: wire.EtcdPromotePath, Handler: s.mastersOnly(http.MethodPost, s.serveEtcdPromote)},
		{Pattern: wire.EtcdForceNewClusterPath, Handler: s.mastersOnly(http.MethodPost, s.serveForceNewCluster)},
	}
}

func (s *Server) mastersOnly(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, ok := apiserver.UserFrom(r.Context()); !ok || !slices.Contains(u.Groups, "system:masters") {
			writeStatus(w, apierrors.NewForbidden(corev1.Resource("etcd"), "", errors.New("only cluster admins manage etcd members")))
			return
		}
		if r.Method != method {
			writeStatus(w, apierrors.NewMethodNotSupported(corev1.Resource("etcd"), r.Method))
			return
		}
		if s.etcd == nil {
			writeStatus(w, apierrors.NewBadRequest("this server's etcd is external: it has no member of its own"))
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) serveEtcdStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.etcd.Status())
}

func readJoin(r *http.Request) (wire.EtcdJoinRequest, error) {
	var req wire.EtcdJoinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return req, fmt.Errorf("decode member request: %w", err)
	}
	if req.Name == "" || req.PeerURL == "" {
		return req, errors.New("member request: name and peerURL are required")
	}
	return req, nil
}

// memberChange runs one membership change for a decoded request. Raft
// takes one change at a time and drops a second proposed meanwhile (its
// caller would wait for nothing): masters joining at once queue here.
// Joiners come through the cluster's address, so to one server.
func (s *Server) memberChange(w http.ResponseWriter, r *http.Request, change func(context.Context, wire.EtcdJoinRequest) (any, error)) {
	req, err := readJoin(r)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	resp, err := change(ctx, req)
	switch {
	case errors.Is(err, storage.ErrNotCaughtUp), errors.Is(err, storage.ErrJoinInProgress):
		writeStatus(w, apierrors.NewConflict(corev1.Resource("etcd"), req.Name, err))
	case err != nil:
		writeStatus(w, apierrors.NewServiceUnavailable(err.Error()))
	default:
		writeJSON(w, resp)
	}
}

func (s *Server) serveEtcdJoin(w http.ResponseWriter, r *http.Request) {
	s.memberChange(w, r, func(ctx context.Context, req wire.EtcdJoinRequest) (any, error) {
		resp, err := storage.AddLearner(ctx, s.client, req.Name, req.PeerURL)
		if err == nil {
			s.log.Info("etcd member added as learner", "member", req.Name, "peer", req.PeerURL, "id", resp.ID)
		}
		return resp, err
	})
}

func (s *Server) serveEtcdPromote(w http.ResponseWriter, r *http.Request) {
	s.memberChange(w, r, func(ctx context.Context, req wire.EtcdJoinRequest) (any, error) {
		return map[string]string{"promoted": req.Name}, storage.Promote(ctx, s.client, req.Name)
	})
}

// serveForceNewCluster rebuilds a lost quorum from this member: refused
// while the member knows a leader (the quorum is there), else the marker
// is written and the server restarts in this process.
func (s *Server) serveForceNewCluster(w http.ResponseWriter, _ *http.Request) {
	st := s.etcd.Status()
	if st.Leader != "" {
		writeStatus(w, apierrors.NewConflict(corev1.Resource("etcd"), st.Name,
			fmt.Errorf("member %s follows leader %s: the quorum is not lost, nothing to recover", st.Name, st.Leader)))
		return
	}
	if err := os.WriteFile(filepath.Join(s.opts.DataDir, forceNewClusterMarker), nil, 0o600); err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	s.log.Warn("quorum recovery asked: restarting as the only member of a new cluster", "member", st.Name, "revision", st.Revision)
	w.WriteHeader(http.StatusAccepted)
	writeJSON(w, st)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the answer go out
		// No graceful shutdown: every client's watch would hold it for
		// seconds, and they all reconnect to the restarted server anyway.
		s.abrupt.Store(true)
		select {
		case s.errs <- ErrRestart:
		default:
		}
		s.cancel()
	}()
}

// holdVIP keeps the cluster's virtual address on this server while its
// member leads etcd: a leader has a quorum behind it (etcd's check-quorum
// makes a cut-off leader step down within an election timeout), and
// writes through the address land on the member that commits them.
func (s *Server) holdVIP(ctx context.Context, addr netip.Addr) {
	a, err := vip.New(s.log.With("component", "vip"), addr)
	if err != nil {
		s.log.Error("cannot hold the cluster's API address", "err", err)
		return
	}
	held := a.Held() // a restarted server may find it from its last run
	announced := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	defer func() {
		if held {
			a.Release()
		}
	}()
	for {
		changed := s.etcd.LeaderChanged()
		switch want := s.etcd.IsLeader(); {
		case want && !held:
			if err := a.Hold(); err != nil {
				s.log.Warn("cannot take the virtual address", "err", err)
			} else {
				held, announced = true, 1
			}
		case !want && held:
			if err := a.Release(); err == nil {
				held = false
			}
		case held && announced < 4:
			// A few more announcements, in case a neighbour missed one.
			a.Announce()
			announced++
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}

// reservedLB are the addresses LoadBalancer services never get: the
// cluster's API address, which the service takes from the cluster's block.
func (s *Server) reservedLB() []netip.Addr {
	if a, err := netip.ParseAddr(s.opts.VIP); err == nil {
		return []netip.Addr{a}
	}
	return nil
}
