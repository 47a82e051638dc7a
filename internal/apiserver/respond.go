package apiserver

import (
	"encoding/json"
	"net/http"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

var (
	tableGVK    = metav1.SchemeGroupVersion.WithKind("Table")
	partialGVK  = metav1.SchemeGroupVersion.WithKind("PartialObjectMetadata")
	partialsGVK = metav1.SchemeGroupVersion.WithKind("PartialObjectMetadataList")
)

// writeObject writes one object, as stored, in the negotiated form and the
// URL's version.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, code int, req *request, obj runtime.Object) error {
	out, err := s.negotiateFor(r, req.res)
	if err != nil {
		return err
	}
	switch out.as {
	case asTable:
		if obj, err = s.table(r, req, []runtime.Object{obj}, metav1.ListMeta{}); err != nil {
			return err
		}
	case asMetadata:
		obj = partialMetadata(obj)
	case asMetadataList:
		return s.negotiateError(out)
	default:
		if obj, err = req.res.Served(obj); err != nil {
			return err
		}
		s.ensureKind(obj)
	}
	return s.encode(w, code, out, obj)
}

// writeList writes a page of stored objects as the kind's list (of the
// URL's version), a Table or a metadata list.
func (s *Server) writeList(w http.ResponseWriter, r *http.Request, req *request, items []runtime.Object, lm metav1.ListMeta) error {
	out, err := s.negotiateFor(r, req.res)
	if err != nil {
		return err
	}
	var obj runtime.Object
	switch out.as {
	case asTable:
		if obj, err = s.table(r, req, items, lm); err != nil {
			return err
		}
	case asMetadataList:
		list := &metav1.PartialObjectMetadataList{ListMeta: lm, Items: make([]metav1.PartialObjectMetadata, len(items))}
		list.SetGroupVersionKind(partialsGVK)
		for i, it := range items {
			list.Items[i] = *partialMetadata(it)
		}
		obj = list
	case asMetadata:
		return s.negotiateError(out)
	default:
		if req.res.Conversion != nil {
			served := make([]runtime.Object, len(items))
			for i, it := range items {
				if served[i], err = req.res.Served(it); err != nil {
					return err
				}
			}
			items = served
		}
		list := req.res.NewList()
		if err := meta.SetList(list, items); err != nil {
			return err
		}
		lma, err := meta.ListAccessor(list)
		if err != nil {
			return err
		}
		lma.SetResourceVersion(lm.ResourceVersion)
		lma.SetContinue(lm.Continue)
		lma.SetRemainingItemCount(lm.RemainingItemCount)
		s.ensureKind(list)
		obj = list
	}
	return s.encode(w, http.StatusOK, out, obj)
}

// negotiateError refuses a form the request asked for that this kind of
// response cannot take (e.g. a metadata list for a single object).
func (s *Server) negotiateError(out *output) error {
	return errNotAcceptable(out.mediaType + " is not available for this request")
}

func (s *Server) encode(w http.ResponseWriter, code int, out *output, obj runtime.Object) error {
	enc := out.info.Serializer
	if out.pretty && out.info.PrettySerializer != nil {
		enc = out.info.PrettySerializer
	}
	w.Header().Set("Content-Type", out.mediaType)
	w.WriteHeader(code)
	// The status line is out: an encoding error now can only end the body.
	if err := enc.Encode(obj, w); err != nil {
		s.log.Warn("encoding response", "err", err)
	}
	return nil
}

// ensureKind sets the kind of an object this request owns. Cached objects
// always carry their kind, so shared objects are never written to here.
func (s *Server) ensureKind(obj runtime.Object) {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return
	}
	if gvks, _, err := s.reg.Scheme.ObjectKinds(obj); err == nil {
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
}

func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	p := &metav1.PartialObjectMetadata{}
	p.SetGroupVersionKind(partialGVK)
	switch o := obj.(type) {
	case metav1.ObjectMetaAccessor:
		p.ObjectMeta = *o.GetObjectMeta().(*metav1.ObjectMeta)
	case *unstructured.Unstructured:
		if m, ok := o.Object["metadata"].(map[string]any); ok {
			runtime.DefaultUnstructuredConverter.FromUnstructured(m, &p.ObjectMeta)
		}
	}
	return p
}

// table renders stored objects as the rows kubectl prints (every version
// of a kind prints alike, as upstream's printers print the internal type).
func (s *Server) table(r *http.Request, req *request, objs []runtime.Object, lm metav1.ListMeta) (*metav1.Table, error) {
	res := req.res
	t := &metav1.Table{ListMeta: lm, Rows: make([]metav1.TableRow, 0, len(objs))}
	t.SetGroupVersionKind(tableGVK)
	if r.URL.Query().Get("noHeaders") != "true" {
		t.ColumnDefinitions = res.Columns
	}
	include := r.URL.Query().Get("includeObject")
	for _, obj := range objs {
		row := metav1.TableRow{}
		if res.Row != nil {
			row.Cells = res.Row(obj)
		} else if m, err := meta.Accessor(obj); err == nil {
			row.Cells = []any{m.GetName()}
		}
		switch include {
		case "None":
		case "Object":
			served, err := res.Served(obj)
			if err != nil {
				return nil, err
			}
			s.ensureKind(served)
			row.Object.Object = served
		default:
			row.Object.Object = partialMetadata(obj)
		}
		t.Rows = append(t.Rows, row)
	}
	if res.Columns == nil && t.ColumnDefinitions != nil {
		t.ColumnDefinitions = []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name"}}
	}
	return t, nil
}

// writeError writes err as a metav1.Status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error, req *request) {
	st := toStatus(err, req).ErrStatus
	st.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Status"))
	if st.Code >= 500 && r.Context().Err() != nil {
		// The client went away (a cancelled watch or wait): nobody reads
		// the answer and nothing failed on this side.
		s.log.Debug("request abandoned by its client", "method", r.Method, "path", r.URL.Path, "err", err)
	} else if st.Code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, int(st.Code), &st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
}
