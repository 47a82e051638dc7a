package hostctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
)

// Usage lists the subcommands of `wharf hostctl`.
const Usage = `usage: wharf hostctl COMMAND --dir DIR [--cgroup-root ROOT]

The machine-side half of the ssh provider, which runs it over ssh.

  supervise [--detach]  run the host's wharf process (DIR/host.json), restarting it
                        when it exits; --detach: in its own session, returning once it runs
  stop                  stop the supervisor and the process (SIGTERM)
  poweroff              kill every process of the host at once; its files stay
  cleanup               remove every trace of the host: processes, mounts, cgroups, files
`

// Main runs `wharf hostctl` with args (the command and its flags). It
// parses its own flags so that a test binary standing in for wharf runs
// exactly what wharf runs.
func Main(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, Usage)
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("hostctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "the host's directory: <base dir>/<cluster key>/<host>")
	var detach *bool
	var cgroupRoot *string
	switch cmd {
	case "supervise":
		detach = fs.Bool("detach", false, "start the supervisor in its own session and return once the process runs")
	case "stop":
	case "poweroff", "cleanup":
		cgroupRoot = fs.String("cgroup-root", "", "the host's cgroup subtree, e.g. /wharf/<cluster key>/<host>")
	default:
		fmt.Fprint(stderr, Usage)
		return fmt.Errorf("hostctl: unknown command %q", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		return fmt.Errorf("hostctl %s: --dir is required and there are no arguments", cmd)
	}
	// Pids are matched to the host by their executable's absolute path.
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch cmd {
	case "supervise":
		if *detach {
			return Detach(ctx, abs)
		}
		err := Supervise(ctx, slog.New(slog.NewTextHandler(stderr, nil)).With("host", abs), abs)
		if errors.Is(err, ErrRunning) {
			return nil // started twice (e.g. two racing starts): one is enough
		}
		return err
	case "stop":
		return Stop(ctx, abs)
	case "poweroff":
		return PowerOff(ctx, abs, *cgroupRoot)
	default:
		return Cleanup(ctx, abs, *cgroupRoot)
	}
}
