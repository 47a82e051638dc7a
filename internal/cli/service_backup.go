package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/clusterservice"
)

func newServiceBackupCmd(stdio Stdio) *cobra.Command {
	f := &serviceRunFlags{}
	var file string
	cmd := &cobra.Command{
		Use:   "backup -o FILE",
		Short: "Archive the service's own state (running or stopped) into one file, with FILE.sha256",
		Long: `Archive the cluster service's state: an etcd snapshot of its server (taken
through its API while it runs, else from its stopped database), its pki,
tokens and registry, its settings and provider network, the ssh provider's
records, the local hosts' records and the clusters' backups. The archive's
sha256 goes in FILE.sha256. Restore it with 'wharf service restore'.`,
		Example: `  wharf service backup -o /srv/wharf-service-$(date +%F).tgz
  wharf service restore --state-dir /var/lib/wharf-service -f /srv/wharf-service-2026-12-08.tgz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-o FILE is required")
			}
			start := time.Now()
			info, err := clusterservice.Backup(cmd.Context(), f.opts, file)
			if err != nil {
				return err
			}
			how := "stopped service"
			if info.Online {
				how = "running service"
			}
			fmt.Fprintf(stdio.Out, "service backup %s: %d files, etcd revision %d (%s), %d bytes, sha256 %s, in %s\n",
				file, len(info.Files), info.EtcdRevision, how, info.Size, info.SHA256, since(start))
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVarP(&file, "output", "o", "", "the archive to write (and FILE.sha256)")
	return cmd
}

func newServiceRestoreCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	f := &serviceRunFlags{}
	var file, sum string
	cmd := &cobra.Command{
		Use:   "restore --state-dir NEW -f FILE",
		Short: "Make a new state dir from a service backup; then 'wharf service start' runs it",
		Long: `Check a service backup (its sha256 against --sha256 or FILE.sha256, every
entry against its manifest, the etcd snapshot), then unpack it into
--state-dir, which must be empty or absent, and restore the snapshot as
the server's etcd. Nothing is left on a failure. 'wharf service start
--state-dir NEW' then runs the service with its clusters, templates,
credentials, registry and cluster backups, and takes back the hosts whose
records it holds and that still run (see docs/service.md, "Backups").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("-f FILE is required")
			}
			f.opts.Logger = g.logger(stdio.Err)
			m, err := clusterservice.Restore(cmd.Context(), f.opts, file, sum)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "service state restored into %s: backup of %s taken %s, etcd revision %d, %d files\n",
				f.opts.StateDir, m.StateDir, m.Created.Format(time.RFC3339), m.EtcdRevision, len(m.Files))
			fmt.Fprintf(stdio.Out, "  wharf service start --state-dir %s\n", f.opts.StateDir)
			return nil
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVarP(&file, "file", "f", "", "the service backup")
	cmd.Flags().StringVar(&sum, "sha256", "", "the backup's expected sha256 (default: FILE.sha256 when present)")
	return cmd
}
