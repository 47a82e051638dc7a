package crd

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func TestStatus(t *testing.T) {
	crontabs := loadCRD(t, "crontab.yaml")
	names := crontabs.Spec.Names
	accepted := func(group string, n apiextv1.CustomResourceDefinitionNames) *apiextv1.CustomResourceDefinition {
		c := &apiextv1.CustomResourceDefinition{}
		c.Name = "other-" + n.Plural + "." + group // never crd itself
		c.Spec.Group = group
		c.Spec.Names = n
		c.Status.AcceptedNames = n
		return c
	}
	cond := func(typ apiextv1.CustomResourceDefinitionConditionType, status apiextv1.ConditionStatus, reason, msg string) apiextv1.CustomResourceDefinitionCondition {
		return apiextv1.CustomResourceDefinitionCondition{Type: typ, Status: status, Reason: reason, Message: msg}
	}
	namesOK := cond(apiextv1.NamesAccepted, apiextv1.ConditionTrue, "NoConflicts", "no conflicts found")
	established := cond(apiextv1.Established, apiextv1.ConditionTrue, "InitialNamesAccepted", "the initial names have been accepted")
	notAccepted := cond(apiextv1.Established, apiextv1.ConditionFalse, "NotAccepted", "not all names are accepted")

	tests := []struct {
		name   string
		crd    func() *apiextv1.CustomResourceDefinition
		others []*apiextv1.CustomResourceDefinition
		want   apiextv1.CustomResourceDefinitionStatus
	}{
		{
			name: "first of its group",
			crd:  crontabs.DeepCopy,
			want: apiextv1.CustomResourceDefinitionStatus{
				AcceptedNames: names, StoredVersions: []string{"v1"},
				Conditions: []apiextv1.CustomResourceDefinitionCondition{namesOK, established},
			},
		},
		{
			name: "itself and other groups do not conflict",
			crd:  crontabs.DeepCopy,
			others: []*apiextv1.CustomResourceDefinition{
				crontabs, accepted("other.example.com", names),
			},
			want: apiextv1.CustomResourceDefinitionStatus{
				AcceptedNames: names, StoredVersions: []string{"v1"},
				Conditions: []apiextv1.CustomResourceDefinitionCondition{namesOK, established},
			},
		},
		{
			name: "plural taken in the group",
			crd:  crontabs.DeepCopy,
			others: []*apiextv1.CustomResourceDefinition{
				accepted("stable.example.com", apiextv1.CustomResourceDefinitionNames{Plural: "crontabs", Singular: "tab", Kind: "Tab", ListKind: "TabList"}),
			},
			want: apiextv1.CustomResourceDefinitionStatus{
				AcceptedNames:  apiextv1.CustomResourceDefinitionNames{Singular: "crontab", ShortNames: []string{"ct"}, Kind: "CronTab", ListKind: "CronTabList"},
				StoredVersions: []string{"v1"},
				Conditions: []apiextv1.CustomResourceDefinitionCondition{
					cond(apiextv1.NamesAccepted, apiextv1.ConditionFalse, "PluralConflict", `"crontabs" is already in use`),
					notAccepted,
				},
			},
		},
		{
			name: "kind taken in the group",
			crd:  crontabs.DeepCopy,
			others: []*apiextv1.CustomResourceDefinition{
				accepted("stable.example.com", apiextv1.CustomResourceDefinitionNames{Plural: "tabs", Singular: "tab", Kind: "CronTab", ListKind: "TabList"}),
			},
			want: apiextv1.CustomResourceDefinitionStatus{
				AcceptedNames:  apiextv1.CustomResourceDefinitionNames{Plural: "crontabs", Singular: "crontab", ShortNames: []string{"ct"}, ListKind: "CronTabList"},
				StoredVersions: []string{"v1"},
				Conditions: []apiextv1.CustomResourceDefinitionCondition{
					cond(apiextv1.NamesAccepted, apiextv1.ConditionFalse, "KindConflict", `"CronTab" is already in use`),
					notAccepted,
				},
			},
		},
		{
			name: "established, then renamed to a name in use: keeps its names",
			crd: func() *apiextv1.CustomResourceDefinition {
				c := crontabs.DeepCopy()
				c.Status = Status(c, nil)
				c.Spec.Names.ShortNames = []string{"ct", "t"}
				return c
			},
			others: []*apiextv1.CustomResourceDefinition{
				accepted("stable.example.com", apiextv1.CustomResourceDefinitionNames{Plural: "tabs", Singular: "tab", ShortNames: []string{"t"}, Kind: "Tab", ListKind: "TabList"}),
			},
			want: apiextv1.CustomResourceDefinitionStatus{
				AcceptedNames: names, StoredVersions: []string{"v1"},
				Conditions: []apiextv1.CustomResourceDefinitionCondition{
					cond(apiextv1.NamesAccepted, apiextv1.ConditionFalse, "ShortNamesConflict", `"t" is already in use`),
					established,
				},
			},
		},
		{
			name: "a k8s.io group without approval",
			crd: func() *apiextv1.CustomResourceDefinition {
				c := crontabs.DeepCopy()
				c.Spec.Group = "stable.k8s.io"
				return c
			},
			want: apiextv1.CustomResourceDefinitionStatus{
				AcceptedNames: names, StoredVersions: []string{"v1"},
				Conditions: []apiextv1.CustomResourceDefinitionCondition{
					namesOK, established,
					cond(apiextv1.KubernetesAPIApprovalPolicyConformant, apiextv1.ConditionFalse, "MissingAnnotation",
						`protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111`),
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Status(tt.crd(), tt.others)
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(apiextv1.CustomResourceDefinitionCondition{}, "LastTransitionTime")); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
