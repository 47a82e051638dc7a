package images

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RemoteFor is the registry of the cluster a kubeconfig names: its
// server's host, with the kubeconfig's CA and credentials on every request.
func RemoteFor(kubeconfig string) (Remote, error) {
	if kubeconfig == "" {
		return Remote{}, fmt.Errorf("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return Remote{}, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	u, err := url.Parse(rc.Host)
	if err != nil || u.Host == "" {
		return Remote{}, fmt.Errorf("kubeconfig %s: server %q is not a URL", kubeconfig, rc.Host)
	}
	rt, err := rest.TransportFor(rc)
	if err != nil {
		return Remote{}, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return Remote{Host: u.Host, Transport: rt}, nil
}

// PushFiles pushes every image of every file; rename applies to a lone image.
func PushFiles(ctx context.Context, out io.Writer, r Remote, files []string, rename string) error {
	for _, file := range files {
		a, err := OpenArchive(file)
		if err != nil {
			return err
		}
		err = pushArchive(ctx, out, r, file, a, rename, len(files))
		a.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func pushArchive(ctx context.Context, out io.Writer, r Remote, file string, a *Archive, rename string, files int) error {
	if rename != "" && (files > 1 || len(a.Items) != 1) {
		return fmt.Errorf("--name needs exactly one image, %s holds %d (of %d files)", file, len(a.Items), files)
	}
	for _, it := range a.Items {
		ref := it.Ref
		if rename != "" {
			ref = rename
		}
		if ref == "" {
			return fmt.Errorf("%s: an image has no name: use --name", file)
		}
		target, err := r.Target(ref)
		if err != nil {
			return fmt.Errorf("%s: name %q: %w", file, ref, err)
		}
		digest, err := r.Push(ctx, it, target)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		inCluster, _ := Remote{Host: Registry}.Target(ref)
		fmt.Fprintf(out, "pushed %s as %s@%s\n", file, inCluster, digest)
	}
	return nil
}
