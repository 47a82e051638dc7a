package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const (
	dialTimeout = 10 * time.Second
	// sessionTimeout bounds opening a session on a pooled connection; a
	// connection that cannot open one in time is dropped and redialed.
	sessionTimeout = 15 * time.Second
	// keepaliveInterval and keepaliveTimeout: how often a pooled
	// connection is checked, and how long its machine has to answer.
	keepaliveInterval = 15 * time.Second
	keepaliveTimeout  = 10 * time.Second
)

// errDial: the machine could not be reached or refused the login.
var errDial = errors.New("cannot connect")

// hostKeyCallback pins host keys: to the given known_hosts lines, or,
// with none, to the keys first seen (kept in file).
func hostKeyCallback(known []byte, file string) (ssh.HostKeyCallback, error) {
	if len(known) > 0 {
		// knownhosts reads files only, and reads them at once.
		tmp, err := os.CreateTemp("", "wharf-known-hosts-*")
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		defer os.Remove(tmp.Name())
		_, err = tmp.Write(known)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		cb, err := knownhosts.New(tmp.Name())
		if err != nil {
			return nil, fmt.Errorf("known hosts: %w", err)
		}
		return cb, nil
	}
	var mu sync.Mutex
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		mu.Lock()
		defer mu.Unlock()
		if _, err := os.Stat(file); err == nil {
			cb, err := knownhosts.New(file)
			if err != nil {
				return fmt.Errorf("known hosts %s: %w", file, err)
			}
			var kerr *knownhosts.KeyError
			switch err := cb(hostname, remote, key); {
			case err == nil:
				return nil
			case errors.As(err, &kerr) && len(kerr.Want) == 0:
				// Not seen before: pinned below.
			case errors.As(err, &kerr):
				return fmt.Errorf("%w (a reinstalled machine? remove its line from %s)", err, file)
			default:
				return err
			}
		}
		f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("known hosts: %w", err)
		}
		defer f.Close()
		_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
		return err
	}, nil
}

// client returns the pooled connection to a machine, dialing it if needed.
func (p *Provider) client(ctx context.Context, machine string) (*ssh.Client, error) {
	for {
		p.mu.Lock()
		if c := p.conns[machine]; c != nil {
			p.mu.Unlock()
			return c, nil
		}
		wait, dialing := p.dials[machine]
		if !dialing {
			wait = make(chan struct{})
			p.dials[machine] = wait
		}
		p.mu.Unlock()
		if dialing {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		c, err := p.dial(ctx, machine)
		p.mu.Lock()
		delete(p.dials, machine)
		if err == nil {
			p.conns[machine] = c
		}
		p.mu.Unlock()
		close(wait)
		if err == nil {
			go p.keepalive(machine, c)
		}
		return c, err
	}
}

func (p *Provider) dial(ctx context.Context, machine string) (*ssh.Client, error) {
	addr, _ := machineAddr(machine)
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w: %w", machine, errDial, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            p.cfg.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(p.signer)},
		HostKeyCallback: p.hostKey,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("machine %s: %w: ssh: %w", machine, errDial, err)
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(cc, chans, reqs), nil
}

// keepalive drops a pooled connection whose machine stops answering (a
// reboot, a cut network), which TCP alone notices only after minutes;
// the next call then dials again instead of waiting on a dead connection.
func (p *Provider) keepalive(machine string, c *ssh.Client) {
	closed := make(chan struct{})
	go func() { c.Wait(); close(closed) }()
	tick := time.NewTicker(keepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			return
		case <-tick.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-closed:
			return
		case err := <-answered:
			if err == nil {
				continue
			}
		case <-time.After(keepaliveTimeout):
		}
		p.log.Debug("dropping a connection that stopped answering", "machine", machine)
		p.drop(machine, c)
		return
	}
}

// drop closes a machine's pooled connection if it is still c.
func (p *Provider) drop(machine string, c *ssh.Client) {
	p.mu.Lock()
	if p.conns[machine] == c {
		delete(p.conns, machine)
	}
	p.mu.Unlock()
	c.Close()
}

// session opens a session, redialing once if the pooled connection died.
func (p *Provider) session(ctx context.Context, machine string) (*ssh.Session, error) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var c *ssh.Client
		if c, err = p.client(ctx, machine); err != nil {
			return nil, err
		}
		type result struct {
			s   *ssh.Session
			err error
		}
		ch := make(chan result, 1)
		go func() {
			s, err := c.NewSession()
			ch <- result{s, err}
		}()
		timer := time.NewTimer(sessionTimeout)
		select {
		case r := <-ch:
			timer.Stop()
			if r.err == nil {
				return r.s, nil
			}
			err = r.err
		case <-timer.C:
			err = errors.New("no session within " + sessionTimeout.String())
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		p.drop(machine, c)
	}
	return nil, fmt.Errorf("machine %s: ssh session: %w", machine, err)
}

// run runs a shell script on a machine as root (through sudo for another
// user), with stdin, and returns its output. A failure's error carries
// the end of the script's stderr.
func (p *Provider) run(ctx context.Context, machine, what, script string, stdin io.Reader) (string, error) {
	s, err := p.session(ctx, machine)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &stdout, &stderr
	cmd := "sh -c " + shq(script)
	if p.cfg.User != "root" {
		cmd = "sudo -n " + cmd
	}
	if err := s.Start(cmd); err != nil {
		return "", fmt.Errorf("%s on %s: %w", what, machine, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Signal(ssh.SIGKILL)
		s.Close()
		return "", fmt.Errorf("%s on %s: %w", what, machine, ctx.Err())
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 1500 {
			msg = "…" + msg[len(msg)-1500:]
		}
		return stdout.String(), fmt.Errorf("%s on %s: %w: %s", what, machine, err, msg)
	}
	return stdout.String(), nil
}

// shq quotes s for a POSIX shell.
func shq(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
