package providertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// HelperCommand is the first argument of the suite's helper process.
const HelperCommand = "providertest-helper"

// startsFile, below the helper's state dir, gets a line per start: a
// second process (or a lost state dir) shows in its length.
const startsFile = "providertest/starts"

// Report is what the helper tells about itself on GET /report.
type Report struct {
	Name     string   `json:"name"`
	PID      int      `json:"pid"`
	Args     []string `json:"args"`
	StateDir string   `json:"stateDir"`
	// Starts counts the helper processes started on this state dir.
	Starts int `json:"starts"`
	// Files are the spec's files as the helper found them.
	Files map[string]FileInfo `json:"files"`
}

// FileInfo is a file's permission bits and content digest.
type FileInfo struct {
	Mode   uint32 `json:"mode"`
	SHA256 string `json:"sha256"`
	Error  string `json:"error,omitempty"`
}

// RunHelperIfAsked runs the suite's helper and exits when the test binary
// was started as one (os.Args[1] == HelperCommand); otherwise it returns.
// Call it first in TestMain of a package that runs the suite with the
// test binary as the hosts' program (the default HelperArgs).
func RunHelperIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != HelperCommand {
		return
	}
	if err := helperMain(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "providertest helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperMain records its start in the state dir, then serves /report and
// /get (which fetches a URL from the host, for reachability checks)
// on --listen until killed. Listening on $(HOST_IP) proves it expanded.
func helperMain(args []string) error {
	fs := flag.NewFlagSet(HelperCommand, flag.ContinueOnError)
	name := fs.String("name", "", "host name")
	listen := fs.String("listen", "", "address to serve on")
	stateDir := fs.String("state-dir", "", "the host's state dir")
	files := fs.String("files", "", "comma-separated files to report")
	fs.String("echo", "", "reported as given (checks expansion)")
	allocate := fs.Int("allocate-mib", 0, "touch this much memory first (a host too small for its program)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *allocate > 0 {
		ballast := make([]byte, *allocate<<20)
		for i := range ballast {
			ballast[i] = 1
		}
		defer runtime.KeepAlive(ballast)
	}
	if err := os.MkdirAll(filepath.Join(*stateDir, filepath.Dir(startsFile)), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(*stateDir, startsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, os.Getpid())
	f.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		rep := Report{Name: *name, PID: os.Getpid(), Args: os.Args[1:], StateDir: *stateDir, Files: map[string]FileInfo{}}
		data, _ := os.ReadFile(filepath.Join(*stateDir, startsFile))
		rep.Starts = strings.Count(string(data), "\n")
		for _, rel := range strings.Split(*files, ",") {
			if rel != "" {
				rep.Files[rel] = fileInfo(filepath.Join(*stateDir, rel))
			}
		}
		json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL.Query().Get("url"), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	return http.Serve(ln, mux)
}

func fileInfo(path string) FileInfo {
	fi, err := os.Stat(path)
	if err != nil {
		return FileInfo{Error: err.Error()}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return FileInfo{Error: err.Error()}
	}
	sum := sha256.Sum256(data)
	return FileInfo{Mode: uint32(fi.Mode().Perm()), SHA256: hex.EncodeToString(sum[:])}
}

// helperArgs are the helper's arguments for a host.
func helperArgs(name string, port int, files []string) []string {
	return []string{
		"--name", name,
		"--listen", "$(HOST_IP):" + strconv.Itoa(port),
		"--state-dir", "$(STATE_DIR)",
		"--files", strings.Join(files, ","),
		"--echo", "<$(HOST_IP)|$(STATE_DIR)>",
	}
}
