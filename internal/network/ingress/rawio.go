package ingress

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO is a TCP connection whose reads and writes are made as raw
// system calls on its non-blocking socket, waiting for readiness through
// the runtime's poller as net.Conn does.
//
// Why: a write on a node is expensive in the kernel (the packet crosses
// a veth pair and is delivered to the pod in the same system call, often
// 20–50 µs), and a system call that long has its P taken by the
// runtime's sysmon and handed to another thread, which on two cores means
// a thread wake-up and a context switch per request and sysmon spinning
// at 20 µs. A raw system call keeps its P: the socket never blocks, so
// nothing waits behind it but the CPU work the call itself is doing.
type rawIO struct {
	net.Conn
	rc syscall.RawConn

	// State of the call in progress: one read and one write may run at
	// once (net/http's server reads in the background while writing).
	rp, wp          []byte
	rn, wn          int
	rerr, werr      syscall.Errno
	readFn, writeFn func(fd uintptr) bool
	readOp, writeOp string
}

// newRawIO wraps c if it has a file descriptor; else it returns c.
func newRawIO(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{Conn: c, rc: rc, readOp: "read", writeOp: "write"}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

// SyscallConn gives the socket (upstreamConn.alive peeks at it).
func (r *rawIO) SyscallConn() (syscall.RawConn, error) { return r.rc, nil }

func (r *rawIO) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rp[0])), uintptr(len(r.rp)))
		switch e {
		case 0:
			r.rn, r.rerr = int(n), 0
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until readable
		}
		r.rn, r.rerr = 0, e
		return true
	}
}

func (r *rawIO) write(fd uintptr) bool {
	for len(r.wp) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wp[0])), uintptr(len(r.wp)))
		switch e {
		case 0:
			r.wn += int(n)
			r.wp = r.wp[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			r.werr = e
			return true
		}
	}
	return true
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp = p
	err := r.rc.Read(r.readFn)
	r.rp = nil
	switch {
	case err != nil:
		return 0, r.opError(r.readOp, err)
	case r.rerr != 0:
		return 0, r.opError(r.readOp, os.NewSyscallError(r.readOp, r.rerr))
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.wp, r.wn, r.werr = p, 0, 0
	err := r.rc.Write(r.writeFn)
	r.wp = nil
	switch {
	case err != nil:
		return r.wn, r.opError(r.writeOp, err)
	case r.werr != 0:
		return r.wn, r.opError(r.writeOp, os.NewSyscallError(r.writeOp, r.werr))
	}
	return r.wn, nil
}

func (r *rawIO) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.LocalAddr(), Addr: r.RemoteAddr(), Err: err}
}
