package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// namespaceFile is where a pod's service account volume holds its namespace.
const namespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

var listPodsCmd = command{
	name:    "list-pods",
	summary: "list the pods of the pod's namespace through client-go's in-cluster config (the service account's token); status 1 if refused",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		namespace := fs.String("namespace", "", "namespace to list (default: the pod's own, from its service account volume)")
		return func(ctx context.Context, _ []string) error {
			cfg, err := rest.InClusterConfig()
			if err != nil {
				return fmt.Errorf("in-cluster config: %w", err)
			}
			ns := *namespace
			if ns == "" {
				data, err := os.ReadFile(namespaceFile)
				if err != nil {
					return fmt.Errorf("the pod's namespace: %w", err)
				}
				ns = strings.TrimSpace(string(data))
			}
			client, err := corev1client.NewForConfig(cfg)
			if err != nil {
				return err
			}
			pods, err := client.Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				fmt.Fprintf(e.stdout, "error: %v\n", err)
				return exitCode(1)
			}
			if len(pods.Items) == 0 {
				return errors.New("no pods listed, not even this one")
			}
			for _, p := range pods.Items {
				fmt.Fprintf(e.stdout, "%s %s\n", p.Name, p.Status.Phase)
			}
			return nil
		}
	},
}
