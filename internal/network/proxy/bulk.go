package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// bulkWriter writes the elements a full sync settled (elemStore.kernel)
// into the empty sets and maps of a new generation, which no rule uses
// yet: the kernel then checks no element against a rule, and traffic
// still goes by the previous generation.
type bulkWriter interface {
	fill(ctx context.Context, stores []*elemStore) error
}

// txBulk writes the elements in one nft transaction: for knftables' fake
// in unit tests.
type txBulk struct{ nft knftables.Interface }

func (b txBulk) fill(ctx context.Context, stores []*elemStore) error {
	tx := b.nft.NewTransaction()
	for _, s := range stores {
		for _, key := range slices.Sorted(maps.Keys(s.kernel)) {
			tx.Add(s.element(key, s.kernel[key]))
		}
	}
	if tx.NumOperations() == 0 {
		return nil
	}
	return b.nft.Run(ctx, tx)
}

// netlinkBulk writes the elements through netlink in one batch, in the
// calling thread's network namespace. nft parses every element of its
// input: 130,000 elements took it 3 s one a command and 1.5 s in commands
// of 5,000; the kernel takes them from netlink in 0.3 s.
type netlinkBulk struct{ table string }

// maxElemList keeps a message's list of elements within a netlink
// attribute's 16-bit length.
const maxElemList = 48 << 10

func (b netlinkBulk) fill(ctx context.Context, stores []*elemStore) error {
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("netlink elements: %w", err)
	}
	defer ns.Close()
	var batch int // bytes, an upper bound
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())), nftables.WithSockOptions(func(c *netlink.Conn) error {
		// The batch goes in one send, larger than net.core.wmem_max allows.
		return forceSendBuffer(c, batch+1<<20)
	}))
	if err != nil {
		return fmt.Errorf("netlink elements: %w", err)
	}
	table := &nftables.Table{Name: b.table, Family: nftables.TableFamilyIPv4}
	for _, s := range stores {
		set := &nftables.Set{Table: table, Name: s.name, IsMap: s.isMap}
		var msg []nftables.SetElement
		size := 0
		send := func() error {
			if len(msg) == 0 {
				return nil
			}
			batch += size + 256
			err := conn.SetAddElements(set, msg)
			msg, size = msg[:0], 0
			return err
		}
		for key, value := range s.kernel {
			e, err := s.netlinkElement(key, value)
			if err != nil {
				return fmt.Errorf("netlink elements of %s: %w", s.name, err)
			}
			// Attribute headers and padding: at most 48 bytes an element.
			n := len(e.Key) + len(e.Val) + 48
			if e.VerdictData != nil {
				n += len(e.VerdictData.Chain) + 4
			}
			if size+n > maxElemList {
				if err := send(); err != nil {
					return fmt.Errorf("netlink elements of %s: %w", s.name, err)
				}
			}
			msg, size = append(msg, e), size+n
		}
		if err := send(); err != nil {
			return fmt.Errorf("netlink elements of %s: %w", s.name, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("netlink elements: %w", err)
	}
	return nil
}

// forceSendBuffer sets the socket's send buffer past net.core.wmem_max
// (CAP_NET_ADMIN, as nft does for large batches).
func forceSendBuffer(c *netlink.Conn, bytes int) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, bytes)
	}); err != nil {
		return err
	}
	return serr
}

// netlinkElement encodes an element in nft syntax (" . " between the
// parts of a concatenation) as the kernel stores it: each part padded to
// 4 bytes.
func (s *elemStore) netlinkElement(key, value string) (nftables.SetElement, error) {
	var e nftables.SetElement
	k, err := encodeFields(s.key, key)
	if err != nil {
		return e, fmt.Errorf("key %q: %w", key, err)
	}
	e.Key = k
	switch {
	case !s.isMap:
	case slices.Equal(s.data, []field{fieldVerdict}) && value == "drop":
		e.VerdictData = &expr.Verdict{Kind: expr.VerdictDrop}
	case slices.Equal(s.data, []field{fieldVerdict}):
		chain, ok := strings.CutPrefix(value, "goto ")
		if !ok {
			return e, fmt.Errorf("verdict %q: neither drop nor a goto", value)
		}
		e.VerdictData = &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
	default:
		if e.Val, err = encodeFields(s.data, value); err != nil {
			return e, fmt.Errorf("value %q: %w", value, err)
		}
	}
	return e, nil
}

func encodeFields(fields []field, text string) ([]byte, error) {
	parts := strings.Split(text, " . ")
	if len(parts) != len(fields) {
		return nil, fmt.Errorf("%d parts, want %d", len(parts), len(fields))
	}
	out := make([]byte, 0, 4*len(parts))
	for i, part := range parts {
		var word [4]byte
		switch fields[i] {
		case fieldAddr:
			a, err := netip.ParseAddr(part)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%q is no IPv4 address", part)
			}
			word = a.As4()
		case fieldProto:
			p, ok := protoNumbers[part]
			if !ok {
				return nil, fmt.Errorf("unknown protocol %q", part)
			}
			word[0] = p
		case fieldPort:
			n, err := strconv.ParseUint(part, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("port %q: %w", part, err)
			}
			binary.BigEndian.PutUint16(word[:], uint16(n))
		case fieldBucket:
			n, err := strconv.ParseUint(part, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bucket %q: %w", part, err)
			}
			binary.NativeEndian.PutUint32(word[:], uint32(n))
		default:
			return nil, fmt.Errorf("part %d: a verdict in a key", i)
		}
		out = append(out, word[:]...)
	}
	return out, nil
}

var protoNumbers = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "sctp": unix.IPPROTO_SCTP}
