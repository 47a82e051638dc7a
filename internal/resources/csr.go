package resources

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	pathvalidation "k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CertificateSigningRequests is certificates.k8s.io/v1
// certificatesigningrequests, as upstream's strategies: the server sets
// spec.username, uid, groups and extra from the creator (the apiserver's
// admission, which knows the user); the spec never changes after create;
// /approval changes only the conditions (Approved, Denied and others),
// /status everything but Approved and Denied. The signer is a controller
// (internal/controllers/csrsigning).
func CertificateSigningRequests() *Resource {
	return &Resource{
		GVR:              certificatesv1.SchemeGroupVersion.WithResource("certificatesigningrequests"),
		Kind:             "CertificateSigningRequest",
		SingularName:     "certificatesigningrequest",
		ShortNames:       []string{"csr"},
		New:              func() runtime.Object { return &certificatesv1.CertificateSigningRequest{} },
		NewList:          func() runtime.Object { return &certificatesv1.CertificateSigningRequestList{} },
		HasStatus:        true,
		PrepareForCreate: typed(prepareCSRCreate),
		// Certificate requests are immutable after creation except through
		// their subresources: the spec stays as stored.
		PrepareForUpdate: typedPrepareUpdate(func(csr, old *certificatesv1.CertificateSigningRequest) {
			csr.Spec = *old.Spec.DeepCopy()
		}),
		PrepareForStatusUpdate: typedPrepareUpdate(prepareCSRStatusUpdate),
		Subresources: []Subresource{{
			Name:             "approval",
			PrepareForUpdate: typedPrepareUpdate(prepareCSRApprovalUpdate),
		}},
		Validate:       typedValidate(validateCSR),
		ValidateUpdate: typedValidateUpdate(validateCSRUpdate),
		ValidateStatus: typedValidateUpdate(validateCSRStatusUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			ageColumn,
			{Name: "SignerName", Type: "string", Description: certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["signerName"]},
			{Name: "Requestor", Type: "string", Description: certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["request"]},
			{Name: "RequestedDuration", Type: "string", Description: certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc()["expirationSeconds"]},
			{Name: "Condition", Type: "string", Description: certificatesv1.CertificateSigningRequestStatus{}.SwaggerDoc()["conditions"]},
		},
		Row: typedRowNow(csrRow),
		Fields: typedFields(func(csr *certificatesv1.CertificateSigningRequest) fields.Set {
			return fields.Set{"spec.signerName": csr.Spec.SignerName}
		}),
	}
}

// prepareCSRCreate drops what the client may not say: who asks (the
// server fills it in) and any status (no request is created approved).
func prepareCSRCreate(csr *certificatesv1.CertificateSigningRequest) {
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = "", "", nil, nil
	csr.Status = certificatesv1.CertificateSigningRequestStatus{}
}

// SetCSRRequestor records who creates csr, as upstream's strategy does
// from the request's user.
func SetCSRRequestor(csr *certificatesv1.CertificateSigningRequest, username, uid string, groups []string, extra map[string][]string) {
	csr.Spec.Username, csr.Spec.UID, csr.Spec.Groups, csr.Spec.Extra = username, uid, groups, nil
	if len(extra) > 0 {
		csr.Spec.Extra = map[string]certificatesv1.ExtraValue{}
		for k, v := range extra {
			csr.Spec.Extra[k] = v
		}
	}
}

// prepareCSRStatusUpdate keeps the Approved and Denied conditions as
// stored: approving is /approval's, not the signer's. Adding or removing
// one is left for validation to refuse.
func prepareCSRStatusUpdate(csr, old *certificatesv1.CertificateSigningRequest) {
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
		oldAt, newAt := conditionIndices(old, t), conditionIndices(csr, t)
		if len(oldAt) != len(newAt) {
			continue
		}
		for i, o := range oldAt {
			csr.Status.Conditions[newAt[i]] = *old.Status.Conditions[o].DeepCopy()
		}
	}
	conditionTimestamps(csr, old, metav1.Now())
}

// prepareCSRApprovalUpdate takes only the conditions from an /approval
// write; the certificate stays as stored.
func prepareCSRApprovalUpdate(csr, old *certificatesv1.CertificateSigningRequest) {
	conditionTimestamps(csr, old, metav1.Now())
	conditions := csr.Status.Conditions
	csr.Status = *old.Status.DeepCopy()
	csr.Status.Conditions = conditions
}

func conditionIndices(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []int {
	var at []int
	for i, c := range csr.Status.Conditions {
		if c.Type == t {
			at = append(at, i)
		}
	}
	return at
}

// conditionTimestamps sets the times a client left empty: lastUpdateTime
// now; lastTransitionTime that of the stored condition of the same type
// and status, else now.
func conditionTimestamps(csr, old *certificatesv1.CertificateSigningRequest, now metav1.Time) {
	for i := range csr.Status.Conditions {
		c := &csr.Status.Conditions[i]
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = now
		}
		if !c.LastTransitionTime.IsZero() {
			continue
		}
		c.LastTransitionTime = now
		for _, o := range old.Status.Conditions {
			if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
				c.LastTransitionTime = o.LastTransitionTime
				break
			}
		}
	}
}

var (
	csrKeyUsages = []certificatesv1.KeyUsage{
		certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
		certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
		certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
		certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
		certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
		certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
		certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
		certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
	}
	// Conditions of these types may only be True.
	trueOnlyConditions = []certificatesv1.RequestConditionType{
		certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed,
	}
	anyConditionStatus = []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}
)

// MinCSRExpirationSeconds is the shortest validity a request may ask for.
const MinCSRExpirationSeconds = 600

// validateCSR is upstream's validation of a request (pkg/apis/certificates
// validation) without its allowances for data older releases stored.
func validateCSR(csr *certificatesv1.CertificateSigningRequest) field.ErrorList {
	errs := validateMeta(&csr.ObjectMeta, false, pathvalidation.ValidatePathSegmentName)
	p := field.NewPath("spec")
	if _, err := ParseCSR(csr.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(p.Child("request"), field.OmitValueType{}, err.Error()))
	}
	up := p.Child("usages")
	if len(csr.Spec.Usages) == 0 {
		errs = append(errs, field.Required(up, ""))
	}
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range csr.Spec.Usages {
		if !oneOf(u, csrKeyUsages...) {
			errs = append(errs, field.NotSupported(up.Index(i), u, csrKeyUsages))
		}
		if seen[u] {
			errs = append(errs, field.Duplicate(up.Index(i), u))
		}
		seen[u] = true
	}
	if csr.Spec.SignerName == certificatesv1beta1.LegacyUnknownSignerName {
		errs = append(errs, field.Invalid(p.Child("signerName"), csr.Spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		errs = append(errs, validateSignerName(p.Child("signerName"), csr.Spec.SignerName)...)
	}
	if s := csr.Spec.ExpirationSeconds; s != nil && *s < MinCSRExpirationSeconds {
		errs = append(errs, field.Invalid(p.Child("expirationSeconds"), *s, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	errs = append(errs, validateCSRConditions(field.NewPath("status", "conditions"), csr.Status.Conditions)...)
	if err := validateCertificatePEM(csr.Status.Certificate); err != nil {
		errs = append(errs, field.Invalid(field.NewPath("status", "certificate"), "<certificate data>", err.Error()))
	}
	return errs
}

// ParseCSR decodes the PEM CERTIFICATE REQUEST of a request's
// spec.request and checks its signature.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	if err := req.CheckSignature(); err != nil {
		return nil, err
	}
	return req, nil
}

// validateSignerName is upstream's ValidateSignerName: a domain of at
// least two DNS labels, a slash, and a path of DNS subdomains separated by
// dots ("example.com/signer-name").
func validateSignerName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	domain, path, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(path, "/") {
		return field.ErrorList{field.Invalid(p, name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	var errs field.ErrorList
	if len(domain) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, field.TooLong(p, "", validation.DNS1123SubdomainMaxLength))
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if msgs := validation.IsDNS1123Label(l); len(msgs) > 0 {
			for _, m := range msgs {
				errs = append(errs, field.Invalid(p, domain, fmt.Sprintf("validating label %q: %s", l, m)))
			}
			break
		}
	}
	if len(labels) < 2 {
		errs = append(errs, field.Invalid(p, domain, "should be a domain with at least two segments separated by dots"))
	}
	for _, l := range strings.Split(path, ".") {
		if msgs := validation.IsDNS1123Subdomain(l); len(msgs) > 0 {
			for _, m := range msgs {
				errs = append(errs, field.Invalid(p, path, fmt.Sprintf("validating label %q: %s", l, m)))
			}
			break
		}
	}
	maxLen := 2*validation.DNS1123SubdomainMaxLength + validation.DNS1123LabelMaxLength + 2
	if len(name) > maxLen {
		errs = append(errs, field.TooLong(p, "", maxLen))
	}
	return errs
}

func validateCSRConditions(p *field.Path, conditions []certificatesv1.CertificateSigningRequestCondition) field.ErrorList {
	var errs field.ErrorList
	seen := map[certificatesv1.RequestConditionType]bool{}
	for i, c := range conditions {
		cp := p.Index(i)
		if c.Type == "" {
			errs = append(errs, field.Required(cp.Child("type"), ""))
		}
		allowed := anyConditionStatus
		if oneOf(c.Type, trueOnlyConditions...) {
			allowed = []corev1.ConditionStatus{corev1.ConditionTrue}
		}
		switch {
		case c.Status == "":
			errs = append(errs, field.Required(cp.Child("status"), ""))
		case !oneOf(c.Status, allowed...):
			errs = append(errs, field.NotSupported(cp.Child("status"), c.Status, allowed))
		}
		if (c.Type == certificatesv1.CertificateApproved && seen[certificatesv1.CertificateDenied]) ||
			(c.Type == certificatesv1.CertificateDenied && seen[certificatesv1.CertificateApproved]) {
			errs = append(errs, field.Invalid(cp.Child("type"), c.Type, "Approved and Denied conditions are mutually exclusive"))
		}
		if seen[c.Type] {
			errs = append(errs, field.Duplicate(cp.Child("type"), c.Type))
		}
		seen[c.Type] = true
	}
	return errs
}

// validateCertificatePEM: empty, or CERTIFICATE blocks without headers
// that parse.
func validateCertificatePEM(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	blocks := 0
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", block.Type)
		}
		if len(block.Headers) != 0 {
			return errors.New("no PEM block headers are permitted")
		}
		certs, err := x509.ParseCertificates(block.Bytes)
		if err != nil {
			return err
		}
		if len(certs) == 0 {
			return errors.New("found CERTIFICATE PEM block containing 0 certificates")
		}
		blocks++
		data = rest
	}
	if blocks == 0 {
		return errors.New("must contain at least one CERTIFICATE PEM block")
	}
	return nil
}

// validateCSRUpdate holds on every path: Approved, Denied and Failed
// conditions are never removed, and an issued certificate never changes.
func validateCSRUpdate(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "conditions")
	for _, t := range trueOnlyConditions {
		if len(conditionIndices(csr, t)) < len(conditionIndices(old, t)) {
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("updates may not remove a condition of type %q", t)))
		}
	}
	if len(old.Status.Certificate) > 0 && !bytes.Equal(csr.Status.Certificate, old.Status.Certificate) {
		errs = append(errs, field.Forbidden(field.NewPath("status", "certificate"), "updates may not modify existing certificate content"))
	}
	return errs
}

// validateCSRStatusUpdate: /status may not approve or deny.
func validateCSRStatusUpdate(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "conditions")
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
		oldC, newC := conditionsOf(old, t), conditionsOf(csr, t)
		switch {
		case len(newC) < len(oldC): // refused by validateCSRUpdate
		case len(newC) > len(oldC):
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("updates may not add a condition of type %q", t)))
		case !apiequality.Semantic.DeepEqual(oldC, newC):
			errs = append(errs, field.Forbidden(p, fmt.Sprintf("updates may not modify a condition of type %q", t)))
		}
	}
	return errs
}

func conditionsOf(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, c := range csr.Status.Conditions {
		if c.Type == t {
			out = append(out, c)
		}
	}
	return out
}

// CSRCondition is kubectl's CONDITION cell: Denied, Approved or Pending,
// then Failed and Issued when so.
func CSRCondition(csr *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	status := "Pending"
	switch {
	case denied:
		status = "Denied"
	case approved:
		status = "Approved"
	}
	if failed {
		status += ",Failed"
	}
	if len(csr.Status.Certificate) > 0 {
		status += ",Issued"
	}
	return status
}

func csrRow(csr *certificatesv1.CertificateSigningRequest, now time.Time) []any {
	requested := "<none>"
	if s := csr.Spec.ExpirationSeconds; s != nil {
		requested = duration.HumanDuration(time.Duration(*s) * time.Second)
	}
	return []any{csr.Name, age(csr.CreationTimestamp, now), orNone(csr.Spec.SignerName), csr.Spec.Username, requested, CSRCondition(csr)}
}
