//go:build !linux

package clusterdns

import "net"

func setReadBuffer(u *net.UDPConn, n int) error { return u.SetReadBuffer(n) }
