package snapshotfile

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// file writes a database of n bytes followed by its sha256, as etcd does.
func file(t *testing.T, n int, mutate func([]byte) []byte) (string, string) {
	t.Helper()
	db := make([]byte, n)
	for i := range db {
		db[i] = byte(i)
	}
	sum := sha256.Sum256(db)
	data := mutate(append(db, sum[:]...))
	path := filepath.Join(t.TempDir(), "s.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	whole := sha256.Sum256(data)
	return path, hex.EncodeToString(whole[:])
}

func TestCheck(t *testing.T) {
	same := func(b []byte) []byte { return b }
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   string // "" the file's own sha256
		bad    bool
	}{
		{name: "good", mutate: same},
		{name: "good, no checksum to compare", mutate: same, want: "-"},
		{name: "truncated", mutate: func(b []byte) []byte { return b[:len(b)-100] }, bad: true},
		{name: "a flipped byte", mutate: func(b []byte) []byte { b[700] ^= 1; return b }, bad: true},
		{name: "another file's checksum", mutate: same, want: "00", bad: true},
		{name: "empty", mutate: func([]byte) []byte { return nil }, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, sum := file(t, 4096, tc.mutate)
			want := sum
			switch tc.want {
			case "-":
				want = ""
			case "":
			default:
				want = tc.want
			}
			info, err := Check(path, want)
			if tc.bad {
				if !errors.Is(err, ErrBad) {
					t.Errorf("err %v, want ErrBad", err)
				}
				return
			}
			if err != nil || info.SHA256 != sum || info.Size != 4096+32 {
				t.Errorf("Check: %+v, %v; want sha256 %s", info, err, sum)
			}
		})
	}
}
