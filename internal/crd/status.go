package crd

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Status returns the status the server gives crd, others being the other
// definitions it has (crd itself may be among them: it is skipped by
// name). It is what upstream's naming, establishing and API approval
// controllers and its strategy compute one after the other, in one step
// because Wharf serves a definition's objects as soon as it is written:
//
//   - acceptedNames: each requested name that no other definition of the
//     group has accepted (or that crd already had);
//   - NamesAccepted: True "NoConflicts", or False with the reason of the
//     last conflict (PluralConflict, SingularConflict, ShortNamesConflict,
//     KindConflict, ListKindConflict) and "%q is already in use";
//   - Established: True "InitialNamesAccepted" once the names were
//     accepted, and then for good (as upstream, a later conflict leaves
//     the accepted names and Established as they were); False
//     "NotAccepted" before;
//   - KubernetesAPIApprovalPolicyConformant for groups under k8s.io and
//     kubernetes.io (the api-approved.kubernetes.io annotation);
//   - storedVersions: the stored ones plus the storage version.
//
// Conditions keep their lastTransitionTime unless their status changes.
func Status(crd *apiextv1.CustomResourceDefinition, others []*apiextv1.CustomResourceDefinition) apiextv1.CustomResourceDefinitionStatus {
	out := crd.DeepCopy()
	// The naming controller skips definitions whose names are all accepted.
	if !reflect.DeepEqual(out.Spec.Names, out.Status.AcceptedNames) || apihelpers.FindCRDCondition(out, apiextv1.NamesAccepted) == nil {
		names, accepted, established := namesAndConditions(out, others)
		out.Status.AcceptedNames = names
		apihelpers.SetCRDCondition(out, accepted)
		apihelpers.SetCRDCondition(out, established)
	}
	// The establishing controller; Wharf has no conversion webhooks, whose
	// CA bundle it would check.
	if apihelpers.IsCRDConditionTrue(out, apiextv1.NamesAccepted) && !apihelpers.IsCRDConditionTrue(out, apiextv1.Established) {
		apihelpers.SetCRDCondition(out, apiextv1.CustomResourceDefinitionCondition{
			Type:    apiextv1.Established,
			Status:  apiextv1.ConditionTrue,
			Reason:  "InitialNamesAccepted",
			Message: "the initial names have been accepted",
		})
	}
	if c := approvalCondition(out); c != nil {
		apihelpers.SetCRDCondition(out, *c)
	} else {
		apihelpers.RemoveCRDCondition(out, apiextv1.KubernetesAPIApprovalPolicyConformant)
	}
	for _, v := range out.Spec.Versions {
		if v.Storage && !slices.Contains(out.Status.StoredVersions, v.Name) {
			out.Status.StoredVersions = append(out.Status.StoredVersions, v.Name)
		}
	}
	return out.Status
}

// namesAndConditions is upstream's NamingConditionController.
// calculateNamesAndConditions (pkg/controller/status), with the other
// definitions given rather than listed from an informer.
func namesAndConditions(in *apiextv1.CustomResourceDefinition, others []*apiextv1.CustomResourceDefinition) (apiextv1.CustomResourceDefinitionNames, apiextv1.CustomResourceDefinitionCondition, apiextv1.CustomResourceDefinitionCondition) {
	allResources, allKinds := acceptedNamesOfGroup(in, others)

	accepted := apiextv1.CustomResourceDefinitionCondition{
		Type:   apiextv1.NamesAccepted,
		Status: apiextv1.ConditionUnknown,
	}
	conflict := func(reason string, err error) {
		accepted.Status = apiextv1.ConditionFalse
		accepted.Reason = reason
		accepted.Message = err.Error()
	}

	requested := in.Spec.Names
	had := in.Status.AcceptedNames
	names := in.Status.AcceptedNames

	if err := equalToAcceptedOrFresh(requested.Plural, had.Plural, allResources); err != nil {
		conflict("PluralConflict", err)
	} else {
		names.Plural = requested.Plural
	}
	if err := equalToAcceptedOrFresh(requested.Singular, had.Singular, allResources); err != nil {
		conflict("SingularConflict", err)
	} else {
		names.Singular = requested.Singular
	}
	if !reflect.DeepEqual(requested.ShortNames, had.ShortNames) {
		var errs []string
		existing := sets.New(had.ShortNames...)
		for _, short := range requested.ShortNames {
			if existing.Has(short) {
				continue
			}
			if err := equalToAcceptedOrFresh(short, "", allResources); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			conflict("ShortNamesConflict", aggregate(errs))
		} else {
			names.ShortNames = requested.ShortNames
		}
	}
	if err := equalToAcceptedOrFresh(requested.Kind, had.Kind, allKinds); err != nil {
		conflict("KindConflict", err)
	} else {
		names.Kind = requested.Kind
	}
	if err := equalToAcceptedOrFresh(requested.ListKind, had.ListKind, allKinds); err != nil {
		conflict("ListKindConflict", err)
	} else {
		names.ListKind = requested.ListKind
	}
	names.Categories = requested.Categories

	if accepted.Status == apiextv1.ConditionUnknown {
		accepted.Status = apiextv1.ConditionTrue
		accepted.Reason = "NoConflicts"
		accepted.Message = "no conflicts found"
	}

	established := apiextv1.CustomResourceDefinitionCondition{
		Type:    apiextv1.Established,
		Status:  apiextv1.ConditionFalse,
		Reason:  "NotAccepted",
		Message: "not all names are accepted",
	}
	if old := apihelpers.FindCRDCondition(in, apiextv1.Established); old != nil {
		established = *old
	}
	if established.Status != apiextv1.ConditionTrue && accepted.Status == apiextv1.ConditionTrue {
		established = apiextv1.CustomResourceDefinitionCondition{
			Type:    apiextv1.Established,
			Status:  apiextv1.ConditionFalse,
			Reason:  "Installing",
			Message: "the initial names have been accepted",
		}
	}
	return names, accepted, established
}

// acceptedNamesOfGroup returns the resource names and kinds accepted by
// the definitions of in's group, in's own included.
func acceptedNamesOfGroup(in *apiextv1.CustomResourceDefinition, others []*apiextv1.CustomResourceDefinition) (resources, kinds sets.Set[string]) {
	resources, kinds = sets.New[string](), sets.New[string]()
	add := func(n apiextv1.CustomResourceDefinitionNames) {
		resources.Insert(n.Plural, n.Singular)
		resources.Insert(n.ShortNames...)
		kinds.Insert(n.Kind, n.ListKind)
	}
	add(in.Status.AcceptedNames)
	for _, o := range others {
		if o.Spec.Group == in.Spec.Group && o.Name != in.Name {
			add(o.Status.AcceptedNames)
		}
	}
	return resources, kinds
}

func equalToAcceptedOrFresh(requested, accepted string, used sets.Set[string]) error {
	if requested == accepted || !used.Has(requested) {
		return nil
	}
	return fmt.Errorf("%q is already in use", requested)
}

// aggregate formats errors as utilerrors.NewAggregate does.
func aggregate(msgs []string) error {
	if len(msgs) == 1 {
		return fmt.Errorf("%s", msgs[0])
	}
	return fmt.Errorf("[%s]", strings.Join(msgs, ", "))
}

// approvalCondition is upstream's apiapproval controller's
// calculateCondition: definitions in the protected community groups
// must carry api-approved.kubernetes.io.
func approvalCondition(crd *apiextv1.CustomResourceDefinition) *apiextv1.CustomResourceDefinitionCondition {
	if !apihelpers.IsProtectedCommunityGroup(crd.Spec.Group) {
		return nil
	}
	state, reason := apihelpers.GetAPIApprovalState(crd.Annotations)
	c := &apiextv1.CustomResourceDefinitionCondition{Type: apiextv1.KubernetesAPIApprovalPolicyConformant, Message: reason}
	switch state {
	case apihelpers.APIApprovalInvalid:
		c.Status, c.Reason = apiextv1.ConditionFalse, "InvalidAnnotation"
	case apihelpers.APIApprovalMissing:
		c.Status, c.Reason = apiextv1.ConditionFalse, "MissingAnnotation"
	case apihelpers.APIApproved:
		c.Status, c.Reason = apiextv1.ConditionTrue, "ApprovedAnnotation"
	case apihelpers.APIApprovalBypassed:
		c.Status, c.Reason = apiextv1.ConditionFalse, "UnapprovedAnnotation"
	default:
		c.Status, c.Reason = apiextv1.ConditionUnknown, "UnknownAnnotation"
	}
	return c
}
