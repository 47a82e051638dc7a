package stream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// LogOptions are what a /containerLogs request asks for: the kubelet's
// reading of corev1.PodLogOptions.
type LogOptions struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	// TailLines < 0: the whole file.
	TailLines int64
	// LimitBytes <= 0: no limit.
	LimitBytes int64
	// Since: only lines logged at or after it (zero: all).
	Since time.Time
}

// ParseLogOptions reads a /containerLogs query; now anchors sinceSeconds.
func ParseLogOptions(q url.Values, now time.Time) (LogOptions, error) {
	o := LogOptions{TailLines: -1}
	for _, b := range []struct {
		key string
		dst *bool
	}{{"follow", &o.Follow}, {"previous", &o.Previous}, {"timestamps", &o.Timestamps}} {
		if v := q.Get(b.key); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s: %q is not a boolean", b.key, v)
			}
			*b.dst = on
		}
	}
	num := func(key string, min int64) (int64, bool, error) {
		v := q.Get(key)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return 0, false, fmt.Errorf("%s: %q must be an integer of at least %d", key, v, min)
		}
		return n, true, nil
	}
	var err error
	var ok bool
	if o.TailLines, ok, err = num("tailLines", 0); err != nil {
		return o, err
	} else if !ok {
		o.TailLines = -1
	}
	if o.LimitBytes, _, err = num("limitBytes", 1); err != nil {
		return o, err
	}
	secs, ok, err := num("sinceSeconds", 1)
	if err != nil {
		return o, err
	}
	if ok {
		o.Since = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		if ok {
			return o, errors.New("at most one of sinceTime or sinceSeconds may be specified")
		}
		if o.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return o, fmt.Errorf("sinceTime: %q is not an RFC 3339 time", v)
		}
	}
	return o, nil
}

// logLine is one line of a CRI log file:
//
//	<RFC3339Nano time> <stdout|stderr> <F|P>[:more tags] <content>
//
// P marks a partial line, continued by the next; F a full one.
type logLine struct {
	time    time.Time
	stream  string
	content []byte // with "\n" appended for a full line
}

var errBadLine = errors.New("not a CRI log line")

func parseLogLine(b []byte) (logLine, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	var l logLine
	field := func() ([]byte, bool) {
		i := bytes.IndexByte(b, ' ')
		if i < 0 {
			return nil, false
		}
		f := b[:i]
		b = b[i+1:]
		return f, true
	}
	ts, ok := field()
	if !ok {
		return l, errBadLine
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return l, errBadLine
	}
	stream, ok := field()
	if !ok || (string(stream) != "stdout" && string(stream) != "stderr") {
		return l, errBadLine
	}
	tags, ok := field()
	if !ok {
		// "<ts> <stream> F" with empty content has no trailing space.
		tags, b = b, nil
	}
	if tag, _, _ := bytes.Cut(tags, []byte(":")); string(tag) != "P" && string(tag) != "F" {
		return l, errBadLine
	} else if string(tag) == "F" {
		b = append(b[:len(b):len(b)], '\n')
	}
	return logLine{time: t, stream: string(stream), content: b}, nil
}

// tailOffset returns where the last n lines of r start (0 for n < 0 or a
// file with fewer lines). A last line without its newline yet is not
// counted, as the kubelet does. It reads backwards in blocks, so a tail of
// a large file costs little.
func tailOffset(r io.ReadSeeker, n int64) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	const block = 4096
	buf := make([]byte, block)
	// Walk back until n+1 newlines are behind us: the (n+1)th from the
	// end closes the line before the first one wanted.
	var newlines int64
	for end := size; end > 0; {
		start := max(end-block, 0)
		chunk := buf[:end-start]
		if _, err := r.Seek(start, io.SeekStart); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(r, chunk); err != nil {
			return 0, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			newlines++
			if newlines == n+1 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}
