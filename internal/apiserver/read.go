package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"wharf.dev/wharf/internal/storage"
)

func (s *Server) get(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	obj, err := s.store.Get(ctx, req.key(), r.URL.Query().Get("resourceVersion"))
	if err != nil {
		return err
	}
	return s.writeObject(w, r, http.StatusOK, req, obj)
}

// predicate turns label and field selectors into a storage predicate.
func (s *Server) predicate(req *request, q url.Values) (storage.Predicate, error) {
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid labelSelector: %v", err))
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid fieldSelector: %v", err))
	}
	// Selectors name the URL's version's fields; objects are matched as stored.
	if c := req.res.Conversion; c != nil && c.FieldLabel != nil {
		fs, err = fs.Transform(func(label, value string) (string, string, error) {
			stored, ok := c.FieldLabel(label)
			if !ok {
				return "", "", fmt.Errorf("field label not supported: %s", label)
			}
			return stored, value, nil
		})
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}
	supported := req.res.SelectableFields(req.res.NewStored())
	for _, rq := range fs.Requirements() {
		if _, ok := supported[rq.Field]; !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", rq.Field))
		}
	}
	if ls.Empty() && fs.Empty() {
		return nil, nil
	}
	res := req.res
	return func(obj runtime.Object) bool {
		m, err := meta.Accessor(obj)
		if err != nil {
			return false
		}
		if !ls.Matches(labels.Set(m.GetLabels())) {
			return false
		}
		return fs.Empty() || fs.Matches(res.SelectableFields(obj))
	}, nil
}

func (s *Server) list(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	q := r.URL.Query()
	pred, err := s.predicate(req, q)
	if err != nil {
		return err
	}
	opts := storage.ListOptions{
		ResourceVersion: q.Get("resourceVersion"), Match: q.Get("resourceVersionMatch"),
		Continue: q.Get("continue"), Predicate: pred,
	}
	if l := q.Get("limit"); l != "" {
		if opts.Limit, err = strconv.ParseInt(l, 10, 64); err != nil || opts.Limit < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid limit %q", l))
		}
	}
	switch {
	case opts.Continue != "" && opts.ResourceVersion != "" && opts.ResourceVersion != "0":
		return apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
	case opts.Match != "" && opts.ResourceVersion == "":
		return apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	case opts.Match != "" && opts.Match != "Exact" && opts.Match != "NotOlderThan":
		return apierrors.NewBadRequest(fmt.Sprintf("unsupported resourceVersionMatch %q", opts.Match))
	}
	if _, err := storage.ParseRV(opts.ResourceVersion); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	page, err := s.store.List(ctx, req.prefix(), opts)
	if err != nil {
		return err
	}
	lm := metav1.ListMeta{
		ResourceVersion: strconv.FormatInt(page.ResourceVersion, 10), Continue: page.Continue, RemainingItemCount: page.RemainingItemCount,
	}
	out, err := s.negotiateFor(r, req.res)
	if err != nil {
		return err
	}
	if done, err := s.writeCachedList(w, out, req, page, lm); done || err != nil {
		return err
	}
	return s.writeList(w, r, req, page.Items, lm)
}

func (s *Server) watch(ctx context.Context, w http.ResponseWriter, r *http.Request, req *request) error {
	q := r.URL.Query()
	pred, err := s.predicate(req, q)
	if err != nil {
		return err
	}
	rv := q.Get("resourceVersion")
	if _, err := storage.ParseRV(rv); err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	opts := storage.WatchOptions{
		ResourceVersion: rv, Predicate: pred,
		Bookmarks: q.Get("allowWatchBookmarks") == "true",
		// Bookmarks carry an empty object of the URL's version.
		NewObject: func() runtime.Object {
			o := req.res.New()
			o.GetObjectKind().SetGroupVersionKind(req.res.GroupVersionKind())
			return o
		},
	}
	if v := q.Get("sendInitialEvents"); v != "" {
		b := v == "true"
		opts.SendInitialEvents = &b
		if b && (!opts.Bookmarks || q.Get("resourceVersionMatch") != "NotOlderThan") {
			return apierrors.NewBadRequest("sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan")
		}
	}
	// Like Kubernetes, end watches after a while (spread so clients do not
	// re-watch in step); clients resume from their last resourceVersion.
	timeout := time.Duration(30+rand.IntN(30)) * time.Minute
	if t := q.Get("timeoutSeconds"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid timeoutSeconds %q", t))
		}
		if n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	out, err := s.negotiateFor(r, req.res)
	if err != nil {
		return err
	}
	if out.as == asMetadataList {
		out.as = asMetadata
	}
	if out.info.StreamSerializer == nil {
		return s.negotiateError(out)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wi, err := s.store.Watch(ctx, req.prefix(), opts)
	if err != nil {
		return err
	}
	defer wi.Stop()
	s.metrics.watchers.Inc()
	defer s.metrics.watchers.Dec()

	mediaType := out.info.MediaType
	if mediaType != "application/json" {
		mediaType += ";stream=watch"
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	ws := &watchEncoder{s: s, r: r, req: req, out: out, frames: out.info.StreamSerializer.Framer.NewFrameWriter(w)}
	ch := wi.ResultChan()
	for {
		var ev watch.Event
		var ok bool
		select {
		case ev, ok = <-ch:
		default:
			// Nothing more queued: send what was written, then wait.
			if flusher != nil {
				flusher.Flush()
			}
			select {
			case ev, ok = <-ch:
			case <-ctx.Done():
				return nil
			}
		}
		if !ok {
			return nil
		}
		if err := ws.write(ev); err != nil {
			s.log.Debug("watch ended", "path", r.URL.Path, "err", err)
			return nil
		}
	}
}

// watchEncoder writes watch events as framed metav1.WatchEvents, their
// objects in the URL's version.
type watchEncoder struct {
	s        *Server
	r        *http.Request
	req      *request
	out      *output
	frames   interface{ Write([]byte) (int, error) }
	buf      bytes.Buffer
	sentCols bool
}

func (e *watchEncoder) write(ev watch.Event) error {
	obj := ev.Object
	switch {
	case ev.Type == watch.Error:
		// A Status telling the client why the watch ends: sent as is.
	case e.out.as == asTable:
		if ev.Type == watch.Bookmark {
			return nil
		}
		t, err := e.s.table(e.r, e.req, []runtime.Object{obj}, metav1.ListMeta{})
		if err != nil {
			return err
		}
		// Only the first event carries the column definitions.
		if e.sentCols {
			t.ColumnDefinitions = nil
		}
		e.sentCols = true
		obj = t
	case e.out.as == asMetadata:
		obj = partialMetadata(obj)
	case ev.Type != watch.Bookmark:
		var err error
		if obj, err = e.req.res.Served(obj); err != nil {
			return err
		}
	}
	e.buf.Reset()
	if err := e.out.info.Serializer.Encode(obj, &e.buf); err != nil {
		return err
	}
	wev := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: e.buf.Bytes()}}
	return e.out.info.StreamSerializer.Serializer.Encode(wev, e.frames)
}
