package up

import (
	"bytes"
	"testing"
)

func TestPrefixWriterPrefixesEveryLine(t *testing.T) {
	var b bytes.Buffer
	w := &prefixWriter{w: &b, prefix: []byte("agent | ")}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree\n"))
	if got, want := b.String(), "agent | one\nagent | two\nagent | three\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
