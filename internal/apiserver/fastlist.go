package apiserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/storage"
)

// Lists are most of an API server's work: informers relist, kubectl lists.
// Cached objects never change, so each item's encoding is made once per
// media type and kept with the object; a list is then these bytes joined
// with the list's header. The output is byte for byte what the generic
// encoders write (a test checks it).

// protoMagic starts every Kubernetes protobuf body.
var protoMagic = []byte{'k', '8', 's', 0}

// writeCachedList writes a page of cached objects from memoized encodings;
// false means the request needs the generic path.
func (s *Server) writeCachedList(w http.ResponseWriter, out *output, req *request, page *storage.ListResult, lm metav1.ListMeta) (bool, error) {
	if out.as != asObject || out.pretty || len(page.Memos) != len(page.Items) {
		return false, nil
	}
	gv := req.res.GVR.GroupVersion()
	kind := req.res.Kind + "List"
	items := servedItems{res: req.res, page: page}
	var body []byte
	var err error
	switch out.info.MediaType {
	case runtime.ContentTypeJSON:
		body, err = s.jsonList(out, gv.String(), kind, items, lm)
	case runtime.ContentTypeProtobuf:
		body, err = protoList(gv.String(), kind, items, lm)
	default:
		return false, nil
	}
	if err != nil {
		return false, err
	}
	w.Header().Set("Content-Type", out.mediaType)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return true, nil
}

// servedItems are a page's cached objects as one version of their
// resource serves them. Each version's encodings are memoized apart.
type servedItems struct {
	res  *resources.Resource
	page *storage.ListResult
}

func (it servedItems) len() int { return len(it.page.Items) }

// encoding returns item i in mediaType, encoded by enc once per version.
func (it servedItems) encoding(i int, mediaType string, enc func(runtime.Object) ([]byte, error)) ([]byte, error) {
	key := mediaType
	if it.res.Conversion != nil {
		key = it.res.GVR.GroupVersion().String() + ";" + mediaType
	}
	return it.page.Memos[i].Get(key, func() ([]byte, error) {
		obj, err := it.res.Served(it.page.Items[i])
		if err != nil {
			return nil, err
		}
		return enc(obj)
	})
}

func (s *Server) jsonList(out *output, apiVersion, kind string, items servedItems, lm metav1.ListMeta) ([]byte, error) {
	meta, err := json.Marshal(&lm)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	writeJSONString(&b, kind)
	b.WriteString(`,"apiVersion":`)
	writeJSONString(&b, apiVersion)
	b.WriteString(`,"metadata":`)
	b.Write(meta)
	b.WriteString(`,"items":[`)
	for i := range items.len() {
		item, err := items.encoding(i, runtime.ContentTypeJSON, func(obj runtime.Object) ([]byte, error) {
			var ib bytes.Buffer
			if err := out.info.Serializer.Encode(obj, &ib); err != nil {
				return nil, err
			}
			return bytes.TrimRight(ib.Bytes(), "\n"), nil
		})
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(item)
	}
	b.WriteString("]}\n")
	return b.Bytes(), nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}

// protoList builds the envelope Kubernetes' protobuf serializer writes:
// magic, then runtime.Unknown{TypeMeta, Raw: the list message}. Every list
// message in k8s.io/api is {1: ListMeta, 2: repeated items}.
func protoList(apiVersion, kind string, items servedItems, lm metav1.ListMeta) ([]byte, error) {
	meta, err := lm.Marshal()
	if err != nil {
		return nil, err
	}
	raw := appendField(nil, 1, meta)
	for i := range items.len() {
		item, err := items.encoding(i, runtime.ContentTypeProtobuf, func(obj runtime.Object) ([]byte, error) {
			m, ok := obj.(interface{ Marshal() ([]byte, error) })
			if !ok {
				return nil, errNoProto
			}
			return m.Marshal()
		})
		if err != nil {
			return nil, err
		}
		raw = appendField(raw, 2, item)
	}
	u := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: apiVersion, Kind: kind}, Raw: raw}
	data, err := u.Marshal()
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, protoMagic...), data...), nil
}

// appendField appends a length-delimited protobuf field.
func appendField(b []byte, field int, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

type protoError string

func (e protoError) Error() string { return string(e) }

const errNoProto = protoError("object has no protobuf encoding")
