package announce

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of MembersConfig: a dead node is seen within 0.8 s, so that a
// load balancer address moves within about a second (the goal is 2 s).
// Seven heartbeats missed in a row are needed: a node stalled for less
// (a GC pause, CPU throttling of its host) is not declared dead; one that
// is comes back as soon as it is heard again.
const (
	DefaultInterval = 100 * time.Millisecond
	DefaultTimeout  = 700 * time.Millisecond
)

// MembersConfig says who a Members is and how it listens.
type MembersConfig struct {
	// Self is this node's name; it is always alive.
	Self string
	// Bind is the node's address; port 0: any free one (Port says
	// which), so that two agents on one machine never clash. The zero
	// AddrPort binds every IPv4 address.
	Bind netip.AddrPort
	// Interval between heartbeats; default DefaultInterval.
	Interval time.Duration
	// Timeout after which an unheard peer is dead; default DefaultTimeout.
	Timeout time.Duration
	// Cluster identifies the cluster: heartbeats of another are ignored.
	Cluster string
	// Key, if set, signs this node's heartbeats (HMAC-SHA256 over the
	// heartbeat and the sender's clock) and makes unsigned, forged and
	// stale ones (sent more than MaxSkew ago, by the sender's clock)
	// ignored: nobody without the key can keep a dead node alive, or a
	// live one's addresses, by sending heartbeats in its name. The
	// cluster's nodes share it (a Secret the server makes).
	Key    []byte
	Logger *slog.Logger
}

// MaxSkew is how far a signed heartbeat's clock may be from the
// receiver's: replays of recorded heartbeats older than that are ignored.
// Hosts' clocks must agree within it (NTP does far better).
const MaxSkew = 30 * time.Second

// Members is a failure detector among a cluster's nodes: it sends a UDP
// heartbeat to every peer each Interval, and a peer unheard for Timeout
// is dead.
type Members struct {
	cfg         MembersConfig
	log         *slog.Logger
	conn        *net.UDPConn
	incarnation uint64
	changes     chan struct{}

	mu           sync.Mutex
	peers        map[string]*peer
	running      bool
	lastRejected map[string]time.Time // by peer; "": names of no peer
}

type peer struct {
	addr  netip.AddrPort
	until time.Time // alive until then, unless heard again
	alive bool      // as last reported
	heard bool
	inc   uint64 // of the last heartbeat heard
	seq   uint64
}

// NewMembers binds the heartbeat socket; Run starts sending.
func NewMembers(cfg MembersConfig) (*Members, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Self == "" || len(cfg.Self) > maxField || len(cfg.Cluster) > maxField {
		return nil, fmt.Errorf("members: node name %q or cluster %q empty or longer than %d bytes", cfg.Self, cfg.Cluster, maxField)
	}
	network := "udp4"
	if cfg.Bind.Addr().Is6() && !cfg.Bind.Addr().Is4In6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(cfg.Bind))
	if err != nil {
		return nil, fmt.Errorf("members: %w", err)
	}
	var inc [8]byte
	rand.Read(inc[:])
	return &Members{
		cfg: cfg, log: cfg.Logger, conn: conn,
		incarnation: binary.BigEndian.Uint64(inc[:]),
		changes:     make(chan struct{}, 1),
		peers:       map[string]*peer{},
	}, nil
}

// Port is the bound port, for the peers to send to.
func (m *Members) Port() int {
	return m.conn.LocalAddr().(*net.UDPAddr).Port
}

// SetPeers sets the other nodes, name → heartbeat address; Self, if
// there, is left out. A known peer keeps its state when its address
// changes (an agent restarted on another port).
//
// A new peer counts as alive for Timeout from now, then only if heard.
// "Dead until heard" would make a just started agent see every other node
// dead, believe it owns every address and take them from their live
// holders until it heard them; the grace costs at most a Timeout during
// which a new peer that never answers is wrongly thought alive.
func (m *Members) SetPeers(peers map[string]netip.AddrPort) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for name := range m.peers {
		if _, ok := peers[name]; !ok {
			changed = changed || m.peers[name].alive
			delete(m.peers, name)
		}
	}
	for name, addr := range peers {
		if name == m.cfg.Self {
			continue
		}
		if p := m.peers[name]; p != nil {
			p.addr = addr
			continue
		}
		m.peers[name] = &peer{addr: addr, until: now.Add(m.cfg.Timeout), alive: true}
		changed = true
	}
	if changed {
		m.signal()
	}
}

// Alive says whether the node is alive: Self always, a peer when heard
// within Timeout.
func (m *Members) Alive(name string) bool {
	if name == m.cfg.Self {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[name]
	return p != nil && p.alive
}

// AliveSet returns every known node, Self included, and whether it is
// alive.
func (m *Members) AliveSet() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{m.cfg.Self: true}
	for name, p := range m.peers {
		out[name] = p.alive
	}
	return out
}

// Changes is signalled when AliveSet changed: a peer died, came back,
// was added or removed while alive.
func (m *Members) Changes() <-chan struct{} {
	return m.changes
}

// Run sends heartbeats and tracks the peers until ctx is done, then
// closes the socket. It runs once.
func (m *Members) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("members: already run")
	}
	m.running = true
	m.mu.Unlock()

	received := make(chan struct{})
	go func() {
		defer close(received)
		m.receive()
	}()
	tick := time.NewTicker(m.cfg.Interval)
	defer tick.Stop()
	for seq := uint64(1); ; seq++ {
		m.beat(seq)
		select {
		case <-ctx.Done():
			m.conn.Close()
			<-received
			return nil
		case <-tick.C:
		}
		m.expire(time.Now())
	}
}

func (m *Members) beat(seq uint64) {
	msg, _ := heartbeat{Cluster: m.cfg.Cluster, Name: m.cfg.Self, Incarnation: m.incarnation, Seq: seq}.encode()
	if m.cfg.Key != nil {
		msg = sign(msg, m.cfg.Key, time.Now())
	}
	m.mu.Lock()
	var to []netip.AddrPort
	for _, p := range m.peers {
		to = append(to, p.addr)
	}
	m.mu.Unlock()
	for _, addr := range to {
		if _, err := m.conn.WriteToUDPAddrPort(msg, addr); err != nil && !errors.Is(err, net.ErrClosed) {
			m.log.Debug("heartbeat", "to", addr, "err", err)
		}
	}
}

func (m *Members) receive() {
	buf := make([]byte, 2048)
	for {
		n, from, err := m.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			m.log.Debug("heartbeat receive", "err", err)
			continue
		}
		hb, ok := decodeHeartbeat(buf[:n])
		if !ok || hb.Cluster != m.cfg.Cluster || hb.Name == m.cfg.Self {
			continue
		}
		if m.cfg.Key != nil {
			if err := verify(buf[:n], hb, m.cfg.Key, time.Now()); err != nil {
				m.rejected(hb.Name, from, err)
				continue
			}
		}
		m.heard(hb, from, time.Now())
	}
}

// heard counts a heartbeat by its sender's name, not its source address:
// a restarted peer is heard before its new port reaches SetPeers.
func (m *Members) heard(hb heartbeat, from netip.AddrPort, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[hb.Name]
	if p == nil {
		return
	}
	if p.heard && hb.Incarnation == p.inc && hb.Seq <= p.seq {
		return // duplicated or overtaken: says nothing new
	}
	p.heard, p.inc, p.seq = true, hb.Incarnation, hb.Seq
	p.until = now.Add(m.cfg.Timeout)
	if !p.alive {
		p.alive = true
		m.log.Info("node alive", "node", hb.Name, "from", from)
		m.signal()
	}
}

// rejected logs a refused heartbeat, at most once a minute per peer (and
// once for all names that are no peer's): a flood of forgeries must not
// flood the log, nor grow the memory of who was refused.
func (m *Members) rejected(name string, from netip.AddrPort, err error) {
	now := time.Now()
	m.mu.Lock()
	if m.lastRejected == nil {
		m.lastRejected = map[string]time.Time{}
	}
	bucket := name
	if m.peers[name] == nil {
		bucket = ""
	}
	quiet := now.Sub(m.lastRejected[bucket]) < time.Minute
	if !quiet {
		m.lastRejected[bucket] = now
	}
	m.mu.Unlock()
	if !quiet {
		m.log.Warn("heartbeat refused", "node", name, "from", from, "err", err)
	}
}

func (m *Members) expire(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.peers {
		if p.alive && !now.Before(p.until) {
			p.alive = false
			m.log.Info("node dead", "node", name, "heard", p.heard)
			m.signal()
		}
	}
}

func (m *Members) signal() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// A heartbeat on the wire:
//
//	"wh" | version 1 | incarnation u64 | seq u64 | len u8 | cluster | len u8 | name
//
// integers big endian. The incarnation is random per Members, so a
// receiver sees a restart; seq counts up within it, so a duplicated or
// overtaken heartbeat is not news. Bytes after the name are ignored: a
// later version 1 may append fields; an incompatible change takes a new
// version, which this one ignores. A signed heartbeat appends
//
//	clock u64 (unix milliseconds) | tag [16]byte
//
// the tag being the first 16 bytes of HMAC-SHA256(key, everything
// before it); receivers without a key ignore both.
type heartbeat struct {
	Cluster, Name    string
	Incarnation, Seq uint64
}

const (
	magic       = "wh"
	version     = 1
	headerSize  = len(magic) + 1 + 8 + 8
	maxField    = 255
	minimumSize = headerSize + 2
)

func (h heartbeat) encode() ([]byte, error) {
	if len(h.Cluster) > maxField || len(h.Name) > maxField {
		return nil, errors.New("heartbeat: field too long")
	}
	b := append([]byte(magic), version)
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	b = append(b, byte(len(h.Cluster)))
	b = append(b, h.Cluster...)
	b = append(b, byte(len(h.Name)))
	return append(b, h.Name...), nil
}

func decodeHeartbeat(b []byte) (heartbeat, bool) {
	if len(b) < minimumSize || string(b[:2]) != magic || b[2] != version {
		return heartbeat{}, false
	}
	h := heartbeat{
		Incarnation: binary.BigEndian.Uint64(b[3:]),
		Seq:         binary.BigEndian.Uint64(b[11:]),
	}
	rest := b[headerSize:]
	field := func() (string, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return "", false
		}
		s := string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		return s, true
	}
	var ok bool
	if h.Cluster, ok = field(); !ok {
		return heartbeat{}, false
	}
	if h.Name, ok = field(); !ok || h.Name == "" {
		return heartbeat{}, false
	}
	return h, true
}

const tagSize = 16

// sign appends the sender's clock and the tag to a heartbeat.
func sign(msg, key []byte, now time.Time) []byte {
	msg = binary.BigEndian.AppendUint64(msg, uint64(now.UnixMilli()))
	mac := hmac.New(sha256.New, key)
	mac.Write(msg)
	return mac.Sum(msg)[:len(msg)+tagSize]
}

var (
	errUnsigned = errors.New("not signed")
	errForged   = errors.New("bad signature")
)

// verify checks the tag of b, a heartbeat decoded as h, and that its
// clock is within MaxSkew of now.
func verify(b []byte, h heartbeat, key []byte, now time.Time) error {
	signedLen := headerSize + 2 + len(h.Cluster) + len(h.Name) + 8
	if len(b) != signedLen+tagSize {
		return errUnsigned
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(b[:signedLen])
	if !hmac.Equal(mac.Sum(nil)[:tagSize], b[signedLen:]) {
		return errForged
	}
	sent := time.UnixMilli(int64(binary.BigEndian.Uint64(b[signedLen-8:])))
	if d := now.Sub(sent); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("sent at %s by its clock, %s from ours (more than %s: a replay, or clocks apart)", sent.UTC().Format(time.RFC3339), d.Round(time.Millisecond), MaxSkew)
	}
	return nil
}
