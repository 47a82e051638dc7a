package resources

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	// CronJob time zones are validated against the tz database; embed it so
	// that validation does not depend on the host's /usr/share/zoneinfo.
	_ "time/tzdata"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"wharf.dev/wharf/internal/cron"
)

// CronJobs is batch/v1 cronjobs: stored and validated (schedule, time zone,
// job template); internal/controllers/cronjob starts their jobs.
func CronJobs() *Resource {
	return &Resource{
		GVR:          batchv1.SchemeGroupVersion.WithResource("cronjobs"),
		Kind:         "CronJob",
		SingularName: "cronjob",
		Namespaced:   true,
		ShortNames:   []string{"cj"},
		Categories:   []string{"all"},
		New:          func() runtime.Object { return &batchv1.CronJob{} },
		NewList:      func() runtime.Object { return &batchv1.CronJobList{} },
		HasStatus:    true,
		Default:      typed(defaultCronJob),
		Validate:     typedValidate(validateCronJob),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Schedule", Type: "string", Description: batchv1.CronJobSpec{}.SwaggerDoc()["schedule"]},
			{Name: "Timezone", Type: "string", Description: batchv1.CronJobSpec{}.SwaggerDoc()["timeZone"]},
			{Name: "Suspend", Type: "boolean", Description: batchv1.CronJobSpec{}.SwaggerDoc()["suspend"]},
			{Name: "Active", Type: "integer", Description: batchv1.CronJobStatus{}.SwaggerDoc()["active"]},
			{Name: "Last Schedule", Type: "string", Description: batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"]},
			ageColumn,
			{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."},
			{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."},
			{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
		},
		Row: typedRowNow(cronJobRow),
	}
}

// cronJobMaxNameLength leaves room for the 11-character suffix the
// controller appends to name a job (a job name is a 63-character label).
const cronJobMaxNameLength = 52

var concurrencyPolicies = []batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}

func defaultCronJob(cj *batchv1.CronJob) {
	s := &cj.Spec
	if s.ConcurrencyPolicy == "" {
		s.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if s.Suspend == nil {
		s.Suspend = ptrTo(false)
	}
	if s.SuccessfulJobsHistoryLimit == nil {
		s.SuccessfulJobsHistoryLimit = ptrTo(int32(3))
	}
	if s.FailedJobsHistoryLimit == nil {
		s.FailedJobsHistoryLimit = ptrTo(int32(1))
	}
	// Kubernetes defaults the template's pod spec, not the job spec: those
	// defaults apply when the controller creates the Job.
	defaultPodTemplate(&s.JobTemplate.Spec.Template)
}

func validateCronJob(cj *batchv1.CronJob) field.ErrorList {
	errs := validateMeta(&cj.ObjectMeta, true, nameIsDNSSubdomain)
	if len(cj.Name) > cronJobMaxNameLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), cj.Name, fmt.Sprintf("must be no more than %d characters", cronJobMaxNameLength)))
	}
	return append(errs, validateCronJobSpec(&cj.Spec, field.NewPath("spec"))...)
}

func validateCronJobSpec(s *batchv1.CronJobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Schedule == "" {
		errs = append(errs, field.Required(p.Child("schedule"), ""))
	} else {
		errs = append(errs, validateSchedule(s.Schedule, p.Child("schedule"))...)
	}
	if s.StartingDeadlineSeconds != nil {
		errs = append(errs, validateNonnegative(*s.StartingDeadlineSeconds, p.Child("startingDeadlineSeconds"))...)
	}
	errs = append(errs, validateTimeZone(s.TimeZone, p.Child("timeZone"))...)
	switch cp := s.ConcurrencyPolicy; {
	case cp == "":
		errs = append(errs, field.Required(p.Child("concurrencyPolicy"), ""))
	case !oneOf(cp, concurrencyPolicies...):
		errs = append(errs, field.NotSupported(p.Child("concurrencyPolicy"), cp, concurrencyPolicies))
	}
	jp := p.Child("jobTemplate", "spec")
	js := &s.JobTemplate.Spec
	errs = append(errs, validateJobTemplateSpecFields(js, jp)...)
	if js.Selector != nil {
		errs = append(errs, field.Invalid(jp.Child("selector"), js.Selector, "`selector` will be auto-generated"))
	}
	if js.ManualSelector != nil && *js.ManualSelector {
		errs = append(errs, field.NotSupported(jp.Child("manualSelector"), js.ManualSelector, []string{"nil", "false"}))
	}
	tm := p.Child("jobTemplate", "metadata")
	errs = append(errs, validateLabels(s.JobTemplate.Labels, tm.Child("labels"))...)
	if s.SuccessfulJobsHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*s.SuccessfulJobsHistoryLimit), p.Child("successfulJobsHistoryLimit"))...)
	}
	if s.FailedJobsHistoryLimit != nil {
		errs = append(errs, validateNonnegative(int64(*s.FailedJobsHistoryLimit), p.Child("failedJobsHistoryLimit"))...)
	}
	return errs
}

// validateSchedule parses the schedule; a time zone belongs in spec.timeZone.
func validateSchedule(schedule string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := cron.Parse(schedule); err != nil {
		errs = append(errs, field.Invalid(p, schedule, err.Error()))
	}
	if strings.Contains(schedule, "TZ") {
		errs = append(errs, field.Invalid(p, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	}
	return errs
}

var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateTimeZone(tz *string, p *field.Path) field.ErrorList {
	if tz == nil {
		return nil
	}
	if *tz == "" {
		return field.ErrorList{field.Invalid(p, *tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(*tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return field.ErrorList{field.Invalid(p, *tz, "unknown time zone "+*tz)}
		}
	}
	if strings.EqualFold(*tz, "Local") {
		return field.ErrorList{field.Invalid(p, *tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(*tz); err != nil {
		return field.ErrorList{field.Invalid(p, *tz, err.Error())}
	}
	return nil
}

func cronJobRow(cj *batchv1.CronJob, now time.Time) []any {
	last := "<none>"
	if t := cj.Status.LastScheduleTime; t != nil {
		last = age(*t, now)
	}
	suspend := "<unset>"
	if s := cj.Spec.Suspend; s != nil {
		suspend = "False"
		if *s {
			suspend = "True"
		}
	}
	names, images := containerCells(cj.Spec.JobTemplate.Spec.Template.Spec.Containers)
	return []any{
		cj.Name, cj.Spec.Schedule, deref(cj.Spec.TimeZone, "<none>"), suspend, int64(len(cj.Status.Active)), last,
		age(cj.CreationTimestamp, now), names, images, metav1.FormatLabelSelector(cj.Spec.JobTemplate.Spec.Selector),
	}
}
