// Package snapshotfile checks an etcd snapshot file as a whole, without
// opening its database: its size, its sha256 against the one recorded
// when it was taken, and the sha256 trailer etcd appends to the database.
// The cluster service checks backups with it before it hands one to a
// host; the host's server checks the database itself (internal/storage).
package snapshotfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// A snapshot file is what etcd's Maintenance.Snapshot streams: a bbolt
// database followed by the sha256 of that database (etcd pads the database
// to 512-byte sectors, so the trailer is what makes size%512 == 32). Wharf
// also records the sha256 of the whole file, so a backup can be checked
// against the checksum kept beside it before anything is restored.

// ErrBad marks a snapshot file that is truncated, corrupted or not a
// snapshot at all.
var ErrBad = errors.New("bad etcd snapshot")

// Info describes a snapshot file.
type Info struct {
	Size int64
	// SHA256 is the hex sha256 of the whole file.
	SHA256 string
	// Revision is the etcd revision the snapshot holds, Keys its live
	// keys: filled only by what reads the database.
	Revision int64
	Keys     int
}

// Check checks the file's size and etcd's trailer, and its sha256
// against want when want is not empty.
func Check(path, want string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	info := Info{Size: st.Size()}
	whole, db := sha256.New(), sha256.New()
	size := st.Size()
	if size < 1024+sha256.Size || size%512 != sha256.Size {
		return info, fmt.Errorf("snapshot %s: %w: %d bytes is not a database plus etcd's sha256 trailer (truncated?)", path, ErrBad, size)
	}
	if _, err := io.Copy(io.MultiWriter(whole, db), io.NewSectionReader(f, 0, size-sha256.Size)); err != nil {
		return info, fmt.Errorf("snapshot %s: read: %w", path, err)
	}
	trailer := make([]byte, sha256.Size)
	if _, err := f.ReadAt(trailer, size-sha256.Size); err != nil {
		return info, fmt.Errorf("snapshot %s: read trailer: %w", path, err)
	}
	whole.Write(trailer)
	if !bytes.Equal(trailer, db.Sum(nil)) {
		return info, fmt.Errorf("snapshot %s: %w: etcd's integrity hash does not match the data (corrupted)", path, ErrBad)
	}
	info.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if want != "" && !strings.EqualFold(want, info.SHA256) {
		return info, fmt.Errorf("snapshot %s: %w: sha256 is %s, want %s (corrupted or not this backup's file)", path, ErrBad, info.SHA256, want)
	}
	return info, nil
}
