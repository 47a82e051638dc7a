//go:build integration

package integration

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/testserver"
)

const gadgetDefinition = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.gc.example.com
spec:
  group: gc.example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

var (
	definitionGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gadgetGVR     = schema.GroupVersionResource{Group: "gc.example.com", Version: "v1", Resource: "gadgets"}
)

// TestCustomResourceGarbageCollection: the garbage collector and namespace
// deletion cover a custom resource defined after the server started, and
// one deleted.
func TestCustomResourceGarbageCollection(t *testing.T) {
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	ctx := testContext(t, 4*time.Minute)
	c := srv.client()
	cfg, err := srv.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)

	def := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(gadgetDefinition), &def.Object); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(definitionGVR).Create(ctx, def, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, "gadgets served", 30*time.Second, func() (bool, error) {
		_, err := dyn.Resource(gadgetGVR).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil, err
	})
	gadgets := func(ns string) dynamic.ResourceInterface { return dyn.Resource(gadgetGVR).Namespace(ns) }

	// Right after the definition: the collector learns the resource at run time.
	t.Run("gadget owned by a config map", func(t *testing.T) {
		cm := createConfigMap(t, ctx, c, "default", "owner-cm", nil)
		createGadget(t, ctx, gadgets("default"), "dependent", nil, ownerRef("v1", "ConfigMap", cm.Name, cm.UID))
		if err := c.CoreV1().ConfigMaps("default").Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the gadget collected", func() error {
			_, err := gadgets("default").Get(ctx, "dependent", metav1.GetOptions{})
			return err
		})
	})

	t.Run("config map owned by a gadget", func(t *testing.T) {
		g := createGadget(t, ctx, gadgets("default"), "owner", nil)
		createConfigMap(t, ctx, c, "default", "dependent-cm", []metav1.OwnerReference{ownerRef("gc.example.com/v1", "Gadget", g.GetName(), g.GetUID())})
		if err := gadgets("default").Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the config map collected", func() error {
			_, err := c.CoreV1().ConfigMaps("default").Get(ctx, "dependent-cm", metav1.GetOptions{})
			return err
		})
	})

	t.Run("namespace with gadgets deleted", func(t *testing.T) {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gadgets"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		createGadget(t, ctx, gadgets("gadgets"), "plain", nil)
		createGadget(t, ctx, gadgets("gadgets"), "held", []string{"gc.example.com/hold"})
		if err := c.CoreV1().Namespaces().Delete(ctx, "gadgets", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		testserver.WaitFor(t, "the gadgets deleted, the held one waiting", 60*time.Second, func() (bool, error) {
			l, err := gadgets("gadgets").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			return len(l.Items) == 1 && l.Items[0].GetDeletionTimestamp() != nil, nil
		})
		ns, err := c.CoreV1().Namespaces().Get(ctx, "gadgets", metav1.GetOptions{})
		if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
			t.Fatalf("namespace while a gadget holds it: %v, %v", err, ns.Status.Phase)
		}
		// The finalizer's owner lets go.
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := gadgets("gadgets").Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the namespace gone", func() error {
			_, err := c.CoreV1().Namespaces().Get(ctx, "gadgets", metav1.GetOptions{})
			return err
		})
		if l, err := gadgets("gadgets").List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
			t.Fatalf("gadgets left in the deleted namespace: %v %v", err, l)
		}
	})

	// The definition's objects go with it, and so do their dependents, even
	// when the collector hears of the resource's end before of its objects'.
	t.Run("config map owned by a gadget, definition deleted", func(t *testing.T) {
		g := createGadget(t, ctx, gadgets("default"), "last", nil)
		createConfigMap(t, ctx, c, "default", "last-cm", []metav1.OwnerReference{ownerRef("gc.example.com/v1", "Gadget", g.GetName(), g.GetUID())})
		if err := dyn.Resource(definitionGVR).Delete(ctx, def.GetName(), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, "the config map collected", func() error {
			_, err := c.CoreV1().ConfigMaps("default").Get(ctx, "last-cm", metav1.GetOptions{})
			return err
		})
		waitGone(t, "the definition gone", func() error {
			_, err := dyn.Resource(definitionGVR).Get(ctx, def.GetName(), metav1.GetOptions{})
			return err
		})
	})
}

func ownerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid}
}

func createConfigMap(t *testing.T, ctx context.Context, c kubernetes.Interface, ns, name string, owners []metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func createGadget(t *testing.T, ctx context.Context, r dynamic.ResourceInterface, name string, finalizers []string, owners ...metav1.OwnerReference) *unstructured.Unstructured {
	t.Helper()
	g := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(1)}}}
	g.SetAPIVersion("gc.example.com/v1")
	g.SetKind("Gadget")
	g.SetName(name)
	g.SetFinalizers(finalizers)
	g.SetOwnerReferences(owners)
	out, err := r.Create(ctx, g, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitGone waits until get answers 404.
func waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	start := time.Now()
	testserver.WaitFor(t, what, 60*time.Second, func() (bool, error) {
		err := get()
		return apierrors.IsNotFound(err), err
	})
	t.Logf("%s after %v", what, time.Since(start).Round(10*time.Millisecond))
}
