package announce

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"wharf.dev/wharf/internal/network/nsrun"
)

// announce sends gratuitous ARP for a on the node's link now, and again
// at garpDelays in the background while a is still held. v.mu is held.
func (v *VIPs) announce(a netip.Addr) error {
	attrs := v.link.Attrs()
	if attrs.Flags&net.FlagLoopback != 0 || len(attrs.HardwareAddr) != 6 {
		return nil // nobody else to tell (lo on `wharf up`), or no Ethernet
	}
	if v.sock < 0 {
		if err := v.openSocket(); err != nil {
			return err
		}
	}
	index, frame := attrs.Index, garpFrame(attrs.HardwareAddr, a)
	err := v.sendFrame(index, frame)
	start := time.Now()
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for _, d := range garpDelays[1:] {
			t := time.NewTimer(time.Until(start.Add(d)))
			select {
			case <-v.stop:
				t.Stop()
				return
			case <-t.C:
			}
			v.mu.Lock()
			// Never for an address given up meanwhile: that would pull
			// its traffic back from the new holder.
			if v.held[a] && v.link.Attrs().Index == index {
				if err := v.sendFrame(index, frame); err != nil {
					v.log.Warn("gratuitous ARP", "address", a, "err", err)
				}
			}
			v.mu.Unlock()
		}
	}()
	return err
}

// openSocket opens a send-only AF_PACKET socket (protocol 0: it receives
// nothing) in the link's namespace; a socket stays in the namespace it
// was made in.
func (v *VIPs) openSocket() error {
	open := func() (err error) {
		v.sock, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	}
	var err error
	if v.ns.IsOpen() {
		err = nsrun.In(v.ns, open)
	} else {
		err = open()
	}
	if err != nil {
		v.sock = -1
		return fmt.Errorf("announce: packet socket: %w", err)
	}
	return nil
}

func (v *VIPs) sendFrame(ifindex int, frame []byte) error {
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
	copy(to.Addr[:], broadcast)
	if err := unix.Sendto(v.sock, frame, 0, to); err != nil {
		return fmt.Errorf("announce: send on link %d: %w", ifindex, err)
	}
	return nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garpFrame is a gratuitous ARP request for ip from mac to everyone:
// sender and target IP both ip, target hardware address zero (RFC 5227).
// A request rather than a reply, as arping -U sends: hosts update an
// existing neighbour entry on either, and some devices only on requests.
func garpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := make([]byte, 60) // the Ethernet minimum; not every driver pads
	copy(f[0:6], broadcast)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_ARP)
	arp := f[14:]
	binary.BigEndian.PutUint16(arp[0:], 1) // hardware: Ethernet
	binary.BigEndian.PutUint16(arp[2:], unix.ETH_P_IP)
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:], 1) // request
	ip4 := ip.As4()
	copy(arp[8:14], mac)
	copy(arp[14:18], ip4[:])
	copy(arp[24:28], ip4[:])
	return f
}

// htons is v in network byte order, as sockaddr_ll wants it.
func htons(v uint16) uint16 {
	return binary.NativeEndian.Uint16(binary.BigEndian.AppendUint16(nil, v))
}
