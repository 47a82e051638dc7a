package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"wharf.dev/wharf/internal/images"
)

func newImageCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the project's images; push to and list the cluster's registry",
		Long: `Clusters reach no public registry: the images pods run are built here and
pushed to the cluster's own registry, served by 'wharf server' at /v2/.
Inside the cluster they are named registry.wharf.local/<repository>:<tag>.`,
	}
	cmd.AddCommand(newImageBuildCmd(g, stdio), newImagePushCmd(stdio), newImageListCmd(stdio))
	return cmd
}

func newImageBuildCmd(g *globalFlags, stdio Stdio) *cobra.Command {
	o := images.BuildOptions{}
	cmd := &cobra.Command{
		Use:   "build [IMAGE...]",
		Short: "Build the pause, testapp and busybox images as OCI layout tarballs",
		Long: `Build the project's images reproducibly (same sources, same digests) into
<out>/<name>.tar, each an OCI image layout tarball tagged
registry.wharf.local/wharf/<name>:v1. Run it inside the wharf checkout: it
compiles images/pause and images/testapp with go build; busybox comes from
Debian's busybox-static (/bin/busybox).`,
		Example: `  wharf image build --out bin/images
  wharf image build pause`,
		ValidArgs: images.Names(),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Only = args
			built, err := images.Build(cmd.Context(), g.logger(stdio.Err), o)
			for _, b := range built {
				fmt.Fprintf(stdio.Out, "%s\t%s\t%s\n", b.Path, b.Ref, b.Digest)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.OutDir, "out", "bin/images", "directory for the tarballs")
	cmd.Flags().StringVar(&o.Busybox, "busybox", "/bin/busybox", "static busybox binary")
	return cmd
}

func newImagePushCmd(stdio Stdio) *cobra.Command {
	var kubeconfig, rename string
	cmd := &cobra.Command{
		Use:   "push FILE...",
		Short: "Push images from tarballs (OCI layout or docker-archive) to the cluster's registry",
		Long: `Push every image in each tarball under its own repository and tag (the
registry part of its name is replaced by the cluster's), or under --name.
The registry is at the kubeconfig's server URL, trusted with its CA and
reached with its credentials, which must be a cluster admin's.`,
		Example: `  wharf image push bin/images/*.tar
  wharf image push --name myteam/app:v2 app.tar   # pods use registry.wharf.local/myteam/app:v2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			r, err := images.RemoteFor(kubeconfig)
			if err != nil {
				return err
			}
			return images.PushFiles(cmd.Context(), stdio.Out, r, files, rename)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (default $KUBECONFIG)")
	cmd.Flags().StringVar(&rename, "name", "", "push the (only) image under this name, e.g. team/app:v2")
	return cmd
}

func newImageListCmd(stdio Stdio) *cobra.Command {
	var kubeconfig, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the repositories, tags, digests and sizes in the cluster's registry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := images.RemoteFor(kubeconfig)
			if err != nil {
				return err
			}
			return listImages(cmd.Context(), stdio.Out, r, output)
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster (default $KUBECONFIG)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func listImages(ctx context.Context, out io.Writer, r images.Remote, format string) error {
	entries, err := r.List(ctx)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	case "table", "":
	default:
		return fmt.Errorf("output format %q: want table or json", format)
	}
	tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tSIZE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Repository, e.Tag, e.Digest, humanSize(e.Size))
	}
	return tw.Flush()
}

// humanSize prints bytes as docker does (powers of 1000).
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, suffix := float64(n), "kMGTPE"
	i := -1
	for f >= unit && i < len(suffix)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.3g%cB", f, suffix[i])
}
