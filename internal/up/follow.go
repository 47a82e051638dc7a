package up

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"wharf.dev/wharf/internal/bgproc"
)

// Follow copies what the server and agent write to their logs to out,
// prefixed with their names, until ctx ends (`wharf up --foreground`).
func Follow(ctx context.Context, out io.Writer, o Options) {
	o, err := o.withDefaults()
	if err != nil {
		return
	}
	l := layoutOf(o)
	done := make(chan struct{})
	procs := []bgproc.Proc{l.server, l.agent}
	for _, p := range procs {
		go func(p bgproc.Proc) {
			defer func() { done <- struct{}{} }()
			followFile(ctx, &prefixWriter{w: out, prefix: []byte(p.Name + " | ")}, p.LogFile)
		}(p)
	}
	for range procs {
		<-done
	}
}

// followFile writes the file's new content to w as it grows.
func followFile(ctx context.Context, w io.Writer, path string) {
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return
	}
	defer f.Close()
	f.Seek(0, io.SeekEnd)
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			continue
		}
		if err != nil && err != io.EOF {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prefixWriter starts every line with a prefix.
type prefixWriter struct {
	w       io.Writer
	prefix  []byte
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !p.midLine {
			out = append(out, p.prefix...)
			p.midLine = true
		}
		out = append(out, c)
		if c == '\n' {
			p.midLine = false
		}
	}
	_, err := p.w.Write(out)
	return len(b), err
}
