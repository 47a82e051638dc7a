package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"wharf.dev/wharf/internal/resources"
)

// CertificateSigningRequests get kube-apiserver's admission of them: the
// creator is recorded as the requestor; the kube-apiserver-client signer
// is never asked for a system:masters certificate
// (CertificateSubjectRestriction); approving or denying needs the
// approve verb on the signer, and writing the certificate or conditions
// through /status the sign verb (CertificateApproval, CertificateSigning):
// resource signers of certificates.k8s.io named by the signerName, or by
// its domain and "/*".

var csrResource = certificatesv1.Resource("certificatesigningrequests")

// setRequestor fills a new request's spec.username, uid, groups and extra
// from the authenticated user (groups with system:authenticated).
func setRequestor(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) {
	if u, ok := UserFrom(ctx); ok {
		info := userInfo(u)
		resources.SetCSRRequestor(csr, info.GetName(), info.GetUID(), info.GetGroups(), info.GetExtra())
	}
}

// admitCSRSubject refuses a request to the kube-apiserver-client signer
// for a certificate in system:masters, whose holder no RBAC could limit.
func admitCSRSubject(csr *certificatesv1.CertificateSigningRequest) error {
	if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName {
		return nil
	}
	req, err := resources.ParseCSR(csr.Spec.Request)
	if err != nil {
		return apierrors.NewForbidden(csrResource, csr.Name, fmt.Errorf("failed to parse CSR: %w", err))
	}
	if slices.Contains(req.Subject.Organization, user.SystemPrivilegedGroup) {
		return apierrors.NewForbidden(csrResource, csr.Name,
			fmt.Errorf("use of %s signer with %s group is not allowed", certificatesv1.KubeAPIServerClientSignerName, user.SystemPrivilegedGroup))
	}
	return nil
}

// admitSubresource checks a write through /status or a kind's own
// subresource once it is valid (cur is the stored object).
func (s *Server) admitSubresource(ctx context.Context, req *request, obj, cur runtime.Object) error {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok || s.authz == nil {
		return nil
	}
	old := cur.(*certificatesv1.CertificateSigningRequest)
	u, ok := UserFrom(ctx)
	if !ok {
		return nil
	}
	switch req.subresource {
	case "approval":
		if !s.authorizedForSigner(ctx, userInfo(u), "approve", old.Spec.SignerName) {
			return apierrors.NewForbidden(csrResource, csr.Name, fmt.Errorf("user not permitted to approve requests with signerName %q", old.Spec.SignerName))
		}
	case "status":
		if bytes.Equal(old.Status.Certificate, csr.Status.Certificate) && apiequality.Semantic.DeepEqual(old.Status.Conditions, csr.Status.Conditions) {
			return nil
		}
		if !s.authorizedForSigner(ctx, userInfo(u), "sign", old.Spec.SignerName) {
			return apierrors.NewForbidden(csrResource, csr.Name, fmt.Errorf("user not permitted to sign requests with signerName %q", old.Spec.SignerName))
		}
	}
	return nil
}

// authorizedForSigner: u may verb the signer signerName, or every signer
// of its domain ("example.com/*"), as upstream's certauthorization.
func (s *Server) authorizedForSigner(ctx context.Context, u user.Info, verb, signerName string) bool {
	domain, _, _ := strings.Cut(signerName, "/")
	for _, name := range []string{signerName, domain + "/*"} {
		d, _, _ := s.authz.chain.Authorize(ctx, authorizer.AttributesRecord{
			User: u, Verb: verb, Name: name, APIGroup: certificatesv1.GroupName, APIVersion: "*",
			Resource: "signers", ResourceRequest: true,
		})
		if d == authorizer.DecisionAllow {
			return true
		}
	}
	return false
}
