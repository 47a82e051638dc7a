package resources

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// MaxClusterBackupNameLength keeps backup names file names and labels.
const MaxClusterBackupNameLength = 63

var backupPhases = []string{wharfv1.BackupPending, wharfv1.BackupCompleted, wharfv1.BackupFailed}

// ClusterBackups is wharf.dev/v1 clusterbackups.
func ClusterBackups() *Resource {
	return &Resource{
		GVR:            wharfv1.SchemeGroupVersion.WithResource("clusterbackups"),
		Kind:           "ClusterBackup",
		SingularName:   "clusterbackup",
		Namespaced:     true,
		ShortNames:     []string{"cbk"},
		Categories:     []string{"wharf"},
		New:            func() runtime.Object { return &wharfv1.ClusterBackup{} },
		NewList:        func() runtime.Object { return &wharfv1.ClusterBackupList{} },
		HasStatus:      true,
		Validate:       typedValidate(validateClusterBackup),
		ValidateUpdate: typedValidateUpdate(validateClusterBackupUpdate),
		ValidateStatus: typedValidateUpdate(validateClusterBackupStatus),
		Admit:          admitClusterBackup,
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Cluster", Type: "string", Description: "The cluster backed up."},
			{Name: "Phase", Type: "string", Description: "Pending, Completed or Failed."},
			{Name: "Size", Type: "string", Description: "The snapshot's size."},
			{Name: "Revision", Type: "integer", Description: "The etcd revision of the snapshot."},
			ageColumn,
			{Name: "Reason", Type: "string", Priority: 1, Description: "Why a backup failed."},
		},
		Row: typedRowNow(clusterBackupRow),
		Fields: typedFields(func(b *wharfv1.ClusterBackup) fields.Set {
			return fields.Set{"spec.cluster": b.Spec.Cluster, "status.phase": b.Status.Phase}
		}),
	}
}

func validateClusterBackup(b *wharfv1.ClusterBackup) field.ErrorList {
	errs := validateMeta(&b.ObjectMeta, true, nameIsDNS1035Label)
	if len(b.Name) > MaxClusterBackupNameLength {
		errs = append(errs, field.TooLong(field.NewPath("metadata", "name"), "", MaxClusterBackupNameLength))
	}
	return append(errs, validateName(nameIsDNS1035Label, b.Spec.Cluster, field.NewPath("spec", "cluster"))...)
}

func validateClusterBackupUpdate(b, old *wharfv1.ClusterBackup) field.ErrorList {
	return apivalidation.ValidateImmutableField(b.Spec, old.Spec, field.NewPath("spec"))
}

func validateClusterBackupStatus(b, _ *wharfv1.ClusterBackup) field.ErrorList {
	p := field.NewPath("status")
	s := &b.Status
	var errs field.ErrorList
	if s.Phase != "" && !oneOf(s.Phase, backupPhases...) {
		errs = append(errs, field.NotSupported(p.Child("phase"), s.Phase, backupPhases))
	}
	if s.Phase == wharfv1.BackupFailed && s.Reason == "" {
		errs = append(errs, field.Required(p.Child("reason"), "a failure says why"))
	}
	if s.Phase == wharfv1.BackupCompleted && len(s.SHA256) != 64 {
		errs = append(errs, field.Invalid(p.Child("sha256"), s.SHA256, "a completed backup has its file's sha256 (64 hex digits)"))
	}
	errs = append(errs, validateNonnegative(s.SizeBytes, p.Child("sizeBytes"))...)
	errs = append(errs, validateNonnegative(s.Revision, p.Child("revision"))...)
	return append(errs, validateNonnegative(s.ObjectCount, p.Child("objectCount"))...)
}

// admitClusterBackup: a new backup is of a cluster of its project that
// exists (made, not only asked for) and is not going away.
func admitClusterBackup(ctx context.Context, obj, old runtime.Object, objs Objects) error {
	if old != nil {
		return nil
	}
	b := obj.(*wharfv1.ClusterBackup)
	c, err := clusterOf(ctx, objs, "ClusterBackup", b.Namespace, b.Name, b.Spec.Cluster)
	switch {
	case err != nil:
		return err
	case c.DeletionTimestamp != nil || c.Status.Status == wharfv1.StatusDeleteInProgress:
		return apierrors.NewConflict(wharfv1.Resource("clusterbackups"), b.Name, fmt.Errorf("cluster %s is being deleted", c.Name))
	case c.Status.APIAddress == "" || c.Status.Status == "" || c.Status.Status == wharfv1.StatusCreateInProgress || c.Status.Status == wharfv1.StatusCreateFailed:
		return apierrors.NewConflict(wharfv1.Resource("clusterbackups"), b.Name,
			fmt.Errorf("cluster %s is not created yet (%s): back it up once it is CREATE_COMPLETE", c.Name, orNone(c.Status.Status)))
	}
	return nil
}

func clusterBackupRow(b *wharfv1.ClusterBackup, now time.Time) []any {
	size := "<none>"
	if b.Status.SizeBytes > 0 {
		size = resource.NewQuantity(b.Status.SizeBytes, resource.BinarySI).String()
	}
	return []any{b.Name, b.Spec.Cluster, orNone(b.Status.Phase), size, b.Status.Revision, age(b.CreationTimestamp, now), b.Status.Reason}
}

// validateFromBackup checks a cluster's spec.fromBackup: a backup's name.
func validateFromBackup(ref string, p *field.Path) field.ErrorList {
	if ref == "" {
		return nil
	}
	return validateName(nameIsDNS1035Label, ref, p)
}

// admitFromBackup: a cluster made from a backup names a Completed backup
// of its project. The service checks the file itself before it makes
// anything (coe, backup_restore.go).
func admitFromBackup(ctx context.Context, c *wharfv1.Cluster, objs Objects) error {
	if c.Spec.FromBackup == "" {
		return nil
	}
	invalid := func(msg string) error {
		return apierrors.NewInvalid(wharfv1.SchemeGroupVersion.WithKind("Cluster").GroupKind(), c.Name, field.ErrorList{field.Invalid(
			field.NewPath("spec", "fromBackup"), c.Spec.FromBackup, msg)})
	}
	o, err := objs.Get(ctx, wharfv1.SchemeGroupVersion.WithResource("clusterbackups"), c.Namespace, c.Spec.FromBackup)
	switch {
	case apierrors.IsNotFound(err):
		return invalid(fmt.Sprintf("cluster backup %q not found in project %q", c.Spec.FromBackup, c.Namespace))
	case err != nil:
		return fmt.Errorf("cluster %s/%s: read backup %s: %w", c.Namespace, c.Name, c.Spec.FromBackup, err)
	}
	b := o.(*wharfv1.ClusterBackup)
	switch {
	case b.DeletionTimestamp != nil:
		return invalid("the backup is being deleted")
	case b.Status.Phase != wharfv1.BackupCompleted:
		return invalid(fmt.Sprintf("the backup is %s, not Completed%s", orNone(b.Status.Phase), reasonSuffix(b.Status.Reason)))
	}
	return nil
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

// Scheduled backups' labels (wharfv1.LabelBackupInterval, LabelBackupRetention).
const (
	DefaultBackupRetention = 7
	MinBackupInterval      = time.Minute
)

// BackupSchedule reads a cluster's backup labels: ok is false without
// backup_interval; err says what is wrong with either label.
func BackupSchedule(labels map[string]string) (interval time.Duration, retention int, ok bool, err error) {
	iv := labels[wharfv1.LabelBackupInterval]
	if iv == "" {
		return 0, 0, false, nil
	}
	if interval, err = time.ParseDuration(iv); err != nil || interval < MinBackupInterval {
		return 0, 0, false, fmt.Errorf("label %s=%q: want a duration of at least %s (e.g. 1h)", wharfv1.LabelBackupInterval, iv, MinBackupInterval)
	}
	retention = DefaultBackupRetention
	if r := labels[wharfv1.LabelBackupRetention]; r != "" {
		if retention, err = strconv.Atoi(r); err != nil || retention < 1 {
			return 0, 0, false, fmt.Errorf("label %s=%q: want a number of backups, at least 1", wharfv1.LabelBackupRetention, r)
		}
	}
	return interval, retention, true, nil
}

// validateBackupLabels refuses backup labels the controller could not use.
func validateBackupLabels(labels map[string]string, p *field.Path) field.ErrorList {
	if _, _, _, err := BackupSchedule(labels); err != nil {
		key := wharfv1.LabelBackupInterval
		if strings.Contains(err.Error(), wharfv1.LabelBackupRetention) {
			key = wharfv1.LabelBackupRetention
		}
		return field.ErrorList{field.Invalid(p.Key(key), labels[key], err.Error())}
	}
	return nil
}
