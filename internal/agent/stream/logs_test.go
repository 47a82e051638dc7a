package stream

import (
	"bufio"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A CRI log: line 3 is split in two partial records; one line is garbage.
const criLog = `2026-01-02T10:00:00.000000001Z stdout F one
2026-01-02T10:00:01.5Z stderr F two
2026-01-02T10:00:02Z stdout P thr
2026-01-02T10:00:03Z stdout F ee
not a log line
2026-01-02T10:00:04Z stdout F
2026-01-02T10:00:05Z stdout F five
`

func writeLog(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadLogs(t *testing.T) {
	path := writeLog(t, criLog)
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339Nano, s); return tm }
	tests := []struct {
		name string
		opts LogOptions
		want string
	}{
		{name: "all", opts: LogOptions{TailLines: -1}, want: "one\ntwo\nthree\n\nfive\n"},
		{name: "tail 2", opts: LogOptions{TailLines: 2}, want: "\nfive\n"},
		{name: "tail 0", opts: LogOptions{TailLines: 0}, want: ""},
		{name: "tail more than the file", opts: LogOptions{TailLines: 100}, want: "one\ntwo\nthree\n\nfive\n"},
		{name: "timestamps once per line", opts: LogOptions{TailLines: -1, Timestamps: true}, want: "" +
			"2026-01-02T10:00:00.000000001Z one\n" +
			"2026-01-02T10:00:01.500000000Z two\n" +
			"2026-01-02T10:00:02.000000000Z three\n" +
			"2026-01-02T10:00:04.000000000Z \n" +
			"2026-01-02T10:00:05.000000000Z five\n"},
		{name: "since", opts: LogOptions{TailLines: -1, Since: at("2026-01-02T10:00:01.5Z")}, want: "two\nthree\n\nfive\n"},
		{name: "limit bytes", opts: LogOptions{TailLines: -1, LimitBytes: 6}, want: "one\ntw"},
		{name: "limit bytes at a line end", opts: LogOptions{TailLines: -1, LimitBytes: 4}, want: "one\n"},
		{name: "tail and timestamps", opts: LogOptions{TailLines: 1, Timestamps: true}, want: "2026-01-02T10:00:05.000000000Z five\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := ReadLogs(context.Background(), path, tt.opts, &b, nil, nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, b.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLogOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		query   string
		want    LogOptions
		wantErr bool
	}{
		{query: "", want: LogOptions{TailLines: -1}},
		{query: "follow=true&previous=true&timestamps=true&tailLines=5&limitBytes=10",
			want: LogOptions{Follow: true, Previous: true, Timestamps: true, TailLines: 5, LimitBytes: 10}},
		{query: "sinceSeconds=30", want: LogOptions{TailLines: -1, Since: now.Add(-30 * time.Second)}},
		{query: "sinceTime=2026-01-01T00:00:00Z", want: LogOptions{TailLines: -1, Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{query: "sinceSeconds=3&sinceTime=2026-01-01T00:00:00Z", wantErr: true},
		{query: "tailLines=-1", wantErr: true},
		{query: "limitBytes=0", wantErr: true},
		{query: "follow=maybe", wantErr: true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := ParseLogOptions(q, now)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.query, err, tt.wantErr)
			continue
		}
		if err == nil && !cmp.Equal(tt.want, got) {
			t.Errorf("%q: %s", tt.query, cmp.Diff(tt.want, got))
		}
	}
}

// stepFollower lets the test see when the reader has drained the file and
// decide when it looks again and when the container has stopped; no
// timing is involved.
type stepFollower struct {
	waiting chan struct{} // a send when Wait starts
	proceed chan struct{} // a receive ends Wait
	stopped atomic.Bool
}

func newStepFollower() *stepFollower {
	return &stepFollower{waiting: make(chan struct{}), proceed: make(chan struct{})}
}

func (f *stepFollower) Running(context.Context) bool { return !f.stopped.Load() }

func (f *stepFollower) Wait(ctx context.Context) {
	select {
	case f.waiting <- struct{}{}:
	case <-ctx.Done():
		return
	}
	select {
	case <-f.proceed:
	case <-ctx.Done():
	}
}

// grow waits until the reader has drained the file, then appends s (and
// stops the container if stop) and lets the reader go on.
func (f *stepFollower) grow(t *testing.T, path, s string, stop bool) {
	t.Helper()
	<-f.waiting
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	file.WriteString(s)
	file.Close()
	f.stopped.Store(stop)
	f.proceed <- struct{}{}
}

func TestFollow(t *testing.T) {
	path := writeLog(t, "2026-01-02T10:00:00Z stdout F first\n2026-01-02T10:00:01Z stdout P par")
	fol := newStepFollower()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ReadLogs(context.Background(), path, LogOptions{Follow: true, TailLines: -1}, pw, fol, nil)
		pw.Close()
	}()
	lines := bufio.NewReader(pr)
	expect := func(want string) {
		t.Helper()
		got, err := lines.ReadString('\n')
		if err != nil || got != want {
			t.Fatalf("read %q (%v), want %q", got, err, want)
		}
	}
	expect("first\n")
	// The half-written line waits for its end.
	fol.grow(t, path, "\n2026-01-02T10:00:02Z stdout F tial\n", false)
	expect("partial\n")
	fol.grow(t, path, "2026-01-02T10:00:03Z stderr F later\n", false)
	expect("later\n")
	// The container stops after a last line: it is still read, then the log ends.
	fol.grow(t, path, "2026-01-02T10:00:04Z stdout F last words\n", true)
	expect("last words\n")
	if rest, _ := io.ReadAll(lines); len(rest) != 0 {
		t.Errorf("after the end: %q", rest)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFollowEndsWhenClientGoes(t *testing.T) {
	path := writeLog(t, "2026-01-02T10:00:00Z stdout F first\n")
	ctx, cancel := context.WithCancel(context.Background())
	fol := newStepFollower()
	var b strings.Builder
	done := make(chan error, 1)
	go func() { done <- ReadLogs(ctx, path, LogOptions{Follow: true, TailLines: -1}, &b, fol, nil) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
