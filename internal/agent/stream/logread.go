package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// timeFormatOut is how timestamps=true prints times: fixed-width
// nanoseconds, as the kubelet does, so columns line up.
const timeFormatOut = "2006-01-02T15:04:05.000000000Z07:00"

// errLimit stops reading once limitBytes are written.
var errLimit = errors.New("log byte limit reached")

// LogFollower says whether a followed log may still grow, and is told
// when to flush what was written so far.
type LogFollower interface {
	// Running reports whether the container still runs; once it does not
	// and the file is drained, the log ends.
	Running(ctx context.Context) bool
	// Wait blocks until the file may have grown (or ctx is done).
	Wait(ctx context.Context)
}

// ReadLogs writes the log file at path to w as opts ask. With Follow it
// keeps reading as the file grows, until the container stops and the file
// is drained, or ctx is done (the client went away); f may be nil
// otherwise. flush, if not nil, is called before each wait.
func ReadLogs(ctx context.Context, path string, opts LogOptions, w io.Writer, f LogFollower, flush func()) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer file.Close()
	start, err := tailOffset(file, opts.TailLines)
	if err != nil {
		return fmt.Errorf("tail of %s: %w", path, err)
	}
	if _, err := file.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("seek in %s: %w", path, err)
	}
	lw := &logWriter{w: w, opts: opts, left: opts.LimitBytes, newLine: true}
	r := bufio.NewReader(file)
	var partial []byte // a file line whose newline is not written yet
	stopping := false
	for {
		b, err := r.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", path, err)
		}
		partial = append(partial, b...)
		if err == nil || (errors.Is(err, io.EOF) && (!opts.Follow || stopping) && len(partial) > 0) {
			// A complete line, or the unfinished last one of a log that
			// will not grow any more.
			if werr := lw.write(partial); werr != nil {
				if errors.Is(werr, errLimit) {
					return nil
				}
				return werr
			}
			partial = partial[:0]
			if err == nil {
				continue
			}
		}
		if !opts.Follow || stopping {
			return nil
		}
		if flush != nil {
			flush()
		}
		// Drained: the log ends once the container has stopped, after a
		// last read of whatever it wrote before stopping.
		if !f.Running(ctx) {
			stopping = true
			continue
		}
		f.Wait(ctx)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// logWriter writes parsed lines as the options say.
type logWriter struct {
	w    io.Writer
	opts LogOptions
	left int64 // bytes left under LimitBytes
	// newLine: the previous line was full, so this one starts a line
	// (and gets a timestamp).
	newLine bool
}

func (lw *logWriter) write(raw []byte) error {
	l, err := parseLogLine(raw)
	if err != nil {
		return nil // the kubelet skips lines it cannot parse, too
	}
	if l.time.Before(lw.opts.Since) {
		return nil
	}
	out := l.content
	if lw.opts.Timestamps && lw.newLine {
		out = append([]byte(l.time.Format(timeFormatOut)+" "), out...)
	}
	lw.newLine = len(l.content) > 0 && l.content[len(l.content)-1] == '\n'
	if lw.opts.LimitBytes > 0 {
		if int64(len(out)) >= lw.left {
			_, err := lw.w.Write(out[:lw.left])
			lw.left = 0
			if err != nil {
				return err
			}
			return errLimit
		}
		lw.left -= int64(len(out))
	}
	_, err = lw.w.Write(out)
	return err
}

// pollFollower follows a container's log by polling: cheap at the rate
// logs are read, and it needs no inotify watches.
type pollFollower struct {
	every   time.Duration
	running func(ctx context.Context) bool
}

func (p pollFollower) Running(ctx context.Context) bool { return p.running(ctx) }

func (p pollFollower) Wait(ctx context.Context) {
	t := time.NewTimer(p.every)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
