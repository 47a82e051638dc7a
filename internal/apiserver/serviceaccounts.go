package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"wharf.dev/wharf/internal/authz"
	"wharf.dev/wharf/internal/satoken"
	"wharf.dev/wharf/internal/storage"
)

// Service account tokens, as kube-apiserver's: the TokenRequest
// subresource (serviceaccounts/{name}/token) issues them, the
// authenticator accepts them while the service account, and the pod or
// secret a token is bound to, still exist with the same UIDs.

const (
	// defaultTokenSeconds is a TokenRequest's default lifetime.
	defaultTokenSeconds = 3600
	// minTokenSeconds is the shortest lifetime one may ask for.
	minTokenSeconds = 600
	// Extra keys of a service account user, as upstream's.
	extraPodName     = "authentication.kubernetes.io/pod-name"
	extraPodUID      = "authentication.kubernetes.io/pod-uid"
	extraNodeName    = "authentication.kubernetes.io/node-name"
	extraCredentials = "authentication.kubernetes.io/credential-id"
)

// apiAudiences are the audiences a token must have to reach the API.
func (s *Server) apiAudiences() []string {
	if len(s.cfg.APIAudiences) > 0 || s.cfg.ServiceAccountIssuer == nil {
		return s.cfg.APIAudiences
	}
	return []string{s.cfg.ServiceAccountIssuer.Name()}
}

// handleToken serves serviceaccounts/{name}/token.
func (s *Server) handleToken(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	if req.gvr.Resource != "serviceaccounts" || req.gvr.Group != "" || req.verb != "create" || s.cfg.ServiceAccountIssuer == nil {
		return errNotFoundPath(r.URL.Path)
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	tr := &authenticationv1.TokenRequest{}
	if err := s.decodeBody(w, r, data, tr, authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")); err != nil {
		return err
	}
	if tr.Spec.ExpirationSeconds == nil {
		tr.Spec.ExpirationSeconds = new(int64(defaultTokenSeconds))
	}
	if len(tr.Spec.Audiences) == 0 {
		tr.Spec.Audiences = s.apiAudiences()
	}
	if errs := validateTokenRequest(tr); len(errs) > 0 {
		return apierrors.NewInvalid(authenticationv1.SchemeGroupVersion.WithKind("TokenRequest").GroupKind(), req.name, errs)
	}
	obj, err := s.get1(ctx, corev1.SchemeGroupVersion.WithResource("serviceaccounts"), req.namespace, req.name)
	if err != nil {
		return err
	}
	sa := obj.(*corev1.ServiceAccount)
	if sa.DeletionTimestamp != nil {
		return apierrors.NewNotFound(corev1.Resource("serviceaccounts"), req.name)
	}
	treq := satoken.Request{
		Namespace:      req.namespace,
		ServiceAccount: satoken.Ref{Name: sa.Name, UID: string(sa.UID)},
		Audiences:      tr.Spec.Audiences,
		Lifetime:       time.Duration(*tr.Spec.ExpirationSeconds) * time.Second,
	}
	if err := s.bindToken(ctx, tr, &treq); err != nil {
		return err
	}
	token, exp, err := s.cfg.ServiceAccountIssuer.Issue(treq)
	if err != nil {
		return err
	}
	tr.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(exp)}
	tr.SetGroupVersionKind(authenticationv1.SchemeGroupVersion.WithKind("TokenRequest"))
	return s.encodeAs(w, r, http.StatusCreated, tr)
}

func validateTokenRequest(tr *authenticationv1.TokenRequest) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("spec")
	switch secs := *tr.Spec.ExpirationSeconds; {
	case secs < minTokenSeconds:
		errs = append(errs, field.Invalid(sp.Child("expirationSeconds"), secs, "may not specify a duration less than 10 minutes"))
	case secs > math.MaxUint32:
		errs = append(errs, field.TooLong(sp.Child("expirationSeconds"), secs, math.MaxUint32))
	}
	for i, a := range tr.Spec.Audiences {
		if a == "" {
			errs = append(errs, field.Required(sp.Child("audiences").Index(i), "audiences may not be empty"))
		}
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		rp := sp.Child("boundObjectRef")
		if ref.Kind != "Pod" && ref.Kind != "Secret" {
			errs = append(errs, field.NotSupported(rp.Child("kind"), ref.Kind, []string{"Pod", "Secret"}))
		}
		if ref.APIVersion != "" && ref.APIVersion != "v1" {
			errs = append(errs, field.NotSupported(rp.Child("apiVersion"), ref.APIVersion, []string{"v1"}))
		}
		if ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
	}
	return errs
}

// bindToken checks the object a token is to be bound to and names it in
// the token; a node may only ask for tokens bound to its own pods.
func (s *Server) bindToken(ctx context.Context, tr *authenticationv1.TokenRequest, treq *satoken.Request) error {
	node := ""
	if u, ok := UserFrom(ctx); ok {
		node, ok = authz.NodeIdentity(userInfo(u))
		if ok && tr.Spec.BoundObjectRef == nil {
			return apierrors.NewForbidden(corev1.Resource("serviceaccounts"), treq.ServiceAccount.Name,
				fmt.Errorf("node requested token not bound to a pod"))
		}
	}
	ref := tr.Spec.BoundObjectRef
	if ref == nil {
		return nil
	}
	var uid types.UID
	switch ref.Kind {
	case "Pod":
		obj, err := s.get1(ctx, corev1.SchemeGroupVersion.WithResource("pods"), treq.Namespace, ref.Name)
		if err != nil {
			return err
		}
		pod := obj.(*corev1.Pod)
		if pod.Spec.ServiceAccountName != treq.ServiceAccount.Name {
			return apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", treq.ServiceAccount.Name))
		}
		if node != "" && pod.Spec.NodeName != node {
			return apierrors.NewForbidden(corev1.Resource("serviceaccounts"), treq.ServiceAccount.Name,
				fmt.Errorf("node requested token bound to a pod scheduled on a different node"))
		}
		uid = pod.UID
		treq.Pod = &satoken.Ref{Name: pod.Name, UID: string(pod.UID)}
		if pod.Spec.NodeName != "" {
			treq.Node = &satoken.Ref{Name: pod.Spec.NodeName}
		}
	case "Secret":
		if node != "" {
			return apierrors.NewForbidden(corev1.Resource("serviceaccounts"), treq.ServiceAccount.Name,
				fmt.Errorf("node requested token bound to a secret"))
		}
		obj, err := s.get1(ctx, corev1.SchemeGroupVersion.WithResource("secrets"), treq.Namespace, ref.Name)
		if err != nil {
			return err
		}
		uid = obj.(*corev1.Secret).UID
		treq.Secret = &satoken.Ref{Name: ref.Name, UID: string(uid)}
	}
	if ref.UID != "" && ref.UID != uid {
		return apierrors.NewConflict(corev1.Resource(strings.ToLower(ref.Kind)+"s"), ref.Name,
			fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	ref.UID, ref.APIVersion = uid, "v1"
	return nil
}

// get1 reads one object from the watch cache, or from storage when the
// cache has not seen it yet (it was just created).
func (s *Server) get1(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, error) {
	res, ok := s.reg.Get(gvr)
	if !ok {
		return nil, fmt.Errorf("%s is not served", gvr)
	}
	key := objectKey(res, namespace, name)
	obj, err := s.store.Get(ctx, key, "0")
	if errors.Is(err, storage.ErrNotFound) {
		obj, err = s.store.Get(ctx, key, "")
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	return obj, err
}

// authenticateServiceAccount accepts a token the server issued for the
// API while what it names exists.
func (s *Server) authenticateServiceAccount(r *http.Request) (*User, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	u, err := s.serviceAccountUser(r.Context(), tok, s.apiAudiences())
	if err != nil {
		s.log.Debug("service account token refused", "err", err)
		return nil, false
	}
	return u, true
}

// serviceAccountUser is the user a token authenticates as, for a request
// whose audiences are audiences.
func (s *Server) serviceAccountUser(ctx context.Context, token string, audiences []string) (*User, error) {
	if s.cfg.ServiceAccountIssuer == nil || !satoken.LooksLikeToken(token) {
		return nil, errors.New("not a service account token")
	}
	c, err := s.cfg.ServiceAccountIssuer.Verify(token, audiences)
	if err != nil {
		return nil, err
	}
	k := c.Kubernetes
	now := time.Now()
	exists := func(resource string, ref satoken.Ref) error {
		obj, err := s.get1(ctx, corev1.SchemeGroupVersion.WithResource(resource), k.Namespace, ref.Name)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", resource, k.Namespace, ref.Name, err)
		}
		m := obj.(metav1.Object)
		if string(m.GetUID()) != ref.UID {
			return fmt.Errorf("%s %s/%s has uid %s, the token names %s", resource, k.Namespace, ref.Name, m.GetUID(), ref.UID)
		}
		// A pod being deleted keeps its token until its grace period ends.
		if dt := m.GetDeletionTimestamp(); dt != nil && dt.Time.Before(now) {
			return fmt.Errorf("%s %s/%s is deleted", resource, k.Namespace, ref.Name)
		}
		return nil
	}
	if err := exists("serviceaccounts", k.ServiceAccount); err != nil {
		return nil, err
	}
	u := &User{
		Name:   satoken.Username(k.Namespace, k.ServiceAccount.Name),
		Groups: satoken.Groups(k.Namespace),
		Extra:  map[string][]string{extraCredentials: {"JTI=" + c.ID}},
	}
	switch {
	case k.Pod != nil:
		if err := exists("pods", *k.Pod); err != nil {
			return nil, err
		}
		u.Extra[extraPodName], u.Extra[extraPodUID] = []string{k.Pod.Name}, []string{k.Pod.UID}
		if k.Node != nil {
			u.Extra[extraNodeName] = []string{k.Node.Name}
		}
	case k.Secret != nil:
		if err := exists("secrets", *k.Secret); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// tokenAudiences is what a TokenReview checks a token against, and what it
// reports: the review's audiences, else the API's.
func (s *Server) tokenAudiences(asked []string) []string {
	if len(asked) == 0 {
		return s.apiAudiences()
	}
	return slices.Clone(asked)
}

// ServiceAccountMountPath is where a pod's containers find their service
// account's token, the cluster's CA and their namespace
// (rest.InClusterConfig reads them there).
const ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// RootCAConfigMap is the ConfigMap in every namespace holding the
// cluster's CA (ca.crt), as kube-controller-manager's publisher keeps it.
const RootCAConfigMap = "kube-root-ca.crt"

// tokenVolumeSeconds is the lifetime of the tokens the volume projects
// (upstream's 3607: an hour and a few seconds, so that its users are seen
// not to expect exactly an hour).
const tokenVolumeSeconds = 3607

// mountServiceAccountToken is the ServiceAccount admission plugin's
// projection: unless the pod or its service account opts out
// (automountServiceAccountToken: false), every container gets a
// kube-api-access volume at ServiceAccountMountPath holding a token bound
// to the pod, the cluster's CA and the pod's namespace. A service account
// that does not exist yet does not stop the pod (upstream refuses it): its
// node's agent waits for it to get the token.
func (s *Server) mountServiceAccountToken(ctx context.Context, pod *corev1.Pod) error {
	if s.cfg.ServiceAccountIssuer == nil {
		return nil
	}
	automount := pod.Spec.AutomountServiceAccountToken
	if automount == nil {
		obj, err := s.get1(ctx, corev1.SchemeGroupVersion.WithResource("serviceaccounts"), pod.Namespace, pod.Spec.ServiceAccountName)
		switch {
		case err == nil:
			automount = obj.(*corev1.ServiceAccount).AutomountServiceAccountToken
		case !apierrors.IsNotFound(err):
			return fmt.Errorf("look up service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err)
		}
	}
	if automount != nil && !*automount {
		return nil
	}
	name := ""
	for name == "" || slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name }) {
		name = "kube-api-access-" + utilrand.String(5)
	}
	mounted := false
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == ServiceAccountMountPath }) {
				continue // the pod mounts something of its own there
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: ServiceAccountMountPath})
			mounted = true
		}
	}
	if !mounted {
		return nil
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: new(int64(tokenVolumeSeconds)), Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
					Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
				}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
					Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}}}},
			},
			DefaultMode: new(int32(0o644)),
		},
	}})
	return nil
}
