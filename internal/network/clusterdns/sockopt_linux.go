package clusterdns

import (
	"net"

	"golang.org/x/sys/unix"
)

// setReadBuffer sizes u's receive buffer: beyond net.core.rmem_max when
// the process may (CAP_NET_ADMIN, as the agent has), else up to it.
func setReadBuffer(u *net.UDPConn, n int) error {
	raw, err := u.SyscallConn()
	if err != nil {
		return u.SetReadBuffer(n)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil || serr != nil {
		return u.SetReadBuffer(n)
	}
	return nil
}
