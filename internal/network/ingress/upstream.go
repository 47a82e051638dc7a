package ingress

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// upstreams keeps the fast path's idle HTTP/1.1 connections to
// endpoints. A connection serves one request at a time, driven
// synchronously by the goroutine of the client's connection: no read or
// write loop of its own, unlike net/http's Transport, whose hand-offs
// between goroutines cost more CPU than the proxying itself.
type upstreams struct {
	dialer net.Dialer

	mu        sync.Mutex
	idle      map[string][]*upstreamConn // by "ip:port"; most recent last
	lastSweep time.Time
}

// upstreamConn is a connection to an endpoint with its buffers.
type upstreamConn struct {
	net.Conn
	addr      string
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool // it served a request before this one
}

func newUpstreams() *upstreams {
	return &upstreams{
		dialer: net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second},
		idle:   map[string][]*upstreamConn{},
	}
}

// get returns an idle connection to addr that has not outstayed
// idleConnTimeout, else a new one.
func (u *upstreams) get(ctx context.Context, addr string) (*upstreamConn, error) {
	now := time.Now()
	u.mu.Lock()
	for l := u.idle[addr]; len(l) > 0; l = u.idle[addr] {
		c := l[len(l)-1]
		u.idle[addr] = l[:len(l)-1]
		if now.Sub(c.idleSince) < idleConnTimeout {
			u.mu.Unlock()
			c.reused = true
			return c, nil
		}
		c.Close()
	}
	u.mu.Unlock()
	nc, err := u.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	nc = newRawIO(nc)
	return &upstreamConn{Conn: nc, addr: addr, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

// put keeps c for another request, unless addr has enough idle ones.
// Now and then it closes those that have been idle too long.
func (u *upstreams) put(c *upstreamConn) {
	now := time.Now()
	c.idleSince = now
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.idle[c.addr]) >= maxIdleConnsPerHost {
		c.Close()
		return
	}
	u.idle[c.addr] = append(u.idle[c.addr], c)
	if now.Sub(u.lastSweep) < idleConnTimeout/2 {
		return
	}
	u.lastSweep = now
	for addr, l := range u.idle {
		kept := l[:0]
		for _, c := range l {
			if now.Sub(c.idleSince) < idleConnTimeout {
				kept = append(kept, c)
			} else {
				c.Close()
			}
		}
		clear(l[len(kept):])
		if len(kept) == 0 {
			delete(u.idle, addr)
		} else {
			u.idle[addr] = kept
		}
	}
}

// closeIdle closes the idle connections.
func (u *upstreams) closeIdle() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.idle {
		for _, c := range l {
			c.Close()
		}
	}
	clear(u.idle)
}

// alive says whether an idle connection can take a request whose body
// could not be sent again: the endpoint has not closed it (nor sent
// anything unasked). Requests without a body are instead retried on a
// new connection when a reused one fails before answering.
func (c *upstreamConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	live := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		live = errors.Is(err, unix.EAGAIN)
		return true
	})
	return err == nil && live
}
