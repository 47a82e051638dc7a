package apiserver

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"wharf.dev/wharf/internal/resources"
)

// Forms of a response besides the object itself, chosen with Accept's "as" parameter.
const (
	asObject       = ""
	asTable        = "Table"
	asMetadata     = "PartialObjectMetadata"
	asMetadataList = "PartialObjectMetadataList"
)

// output is a negotiated response format.
type output struct {
	info      runtime.SerializerInfo
	as        string
	mediaType string // Content-Type of the response
	pretty    bool
}

// negotiate picks the response format from the Accept header. Clients list
// preferences in order (e.g. kubectl: Table as JSON, then plain JSON); the
// first one this server can produce wins.
func (s *Server) negotiate(r *http.Request) (*output, error) { return s.negotiateFor(r, nil) }

// negotiateFor is negotiate for objects of res: kinds without protobuf
// encoding (wharf.dev's, like Kubernetes' custom resources) skip protobuf,
// so a client listing it before JSON (the in-process clients) gets JSON.
func (s *Server) negotiateFor(r *http.Request, res *resources.Resource) (*output, error) {
	noProto := res != nil && !hasProtobuf(res)
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "application/json"
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		info, ok := s.serializerFor(mt)
		if !ok {
			continue
		}
		as := params["as"]
		if noProto && as == asObject && info.MediaType == runtime.ContentTypeProtobuf {
			continue
		}
		if as != "" {
			if params["g"] != "meta.k8s.io" || params["v"] != "v1" {
				continue
			}
			switch as {
			case asTable:
				if info.MediaType != runtime.ContentTypeJSON {
					continue
				}
			case asMetadata, asMetadataList:
				if info.MediaType == runtime.ContentTypeYAML {
					continue
				}
			default:
				continue
			}
		}
		out := &output{info: info, as: as, mediaType: info.MediaType, pretty: r.URL.Query().Get("pretty") == "true"}
		if as != "" {
			out.mediaType = fmt.Sprintf("%s;as=%s;g=meta.k8s.io;v=v1", info.MediaType, as)
		}
		return out, nil
	}
	return nil, errNotAcceptable("only application/json, application/yaml and application/vnd.kubernetes.protobuf are supported")
}

func hasProtobuf(res *resources.Resource) bool {
	_, ok := res.New().(interface{ Marshal() ([]byte, error) })
	return ok
}

func errNotAcceptable(msg string) error {
	return apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schema.GroupResource{}, "", msg, 0, false)
}

func (s *Server) serializerFor(mediaType string) (runtime.SerializerInfo, bool) {
	switch mediaType {
	case "*/*", "application/*", "":
		mediaType = runtime.ContentTypeJSON
	}
	for _, info := range s.codecs.SupportedMediaTypes() {
		if info.MediaType == mediaType {
			return info, true
		}
	}
	return runtime.SerializerInfo{}, false
}

// maxBodyBytes bounds request bodies, as Kubernetes' 3 MiB limit does.
const maxBodyBytes = 3 << 20

// readBody reads a request body within the size limit.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("reading request body: %v", err))
	}
	if len(data) > maxBodyBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d bytes", maxBodyBytes))
	}
	return data, nil
}

// decodeBody decodes a request body of one of the serializer media types
// into into, honouring fieldValidation (Strict, Warn — the default — or Ignore).
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, data []byte, into runtime.Object, want schema.GroupVersionKind) error {
	ct := r.Header.Get("Content-Type")
	mt := runtime.ContentTypeJSON
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return unsupportedMediaType(ct)
		}
	}
	info, ok := s.serializerFor(mt)
	if !ok {
		return unsupportedMediaType(ct)
	}
	return s.decodeWith(w, r, info, data, into, want)
}

func (s *Server) decodeWith(w http.ResponseWriter, r *http.Request, info runtime.SerializerInfo, data []byte, into runtime.Object, want schema.GroupVersionKind) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return apierrors.NewBadRequest("the request body is empty")
	}
	mode := r.URL.Query().Get("fieldValidation")
	dec := info.Serializer
	if mode != "Ignore" && info.StrictSerializer != nil {
		dec = info.StrictSerializer
	}
	obj, gvk, err := dec.Decode(data, &want, into)
	if err != nil && runtime.IsStrictDecodingError(err) && mode != "Strict" {
		if mode != "Ignore" {
			for _, e := range err.(interface{ Errors() []error }).Errors() {
				w.Header().Add("Warning", fmt.Sprintf(`299 - %q`, e.Error()))
			}
		}
		obj, gvk, err = info.Serializer.Decode(data, &want, into)
	}
	if err != nil {
		if runtime.IsStrictDecodingError(err) {
			return apierrors.NewBadRequest(err.Error())
		}
		return apierrors.NewBadRequest(fmt.Sprintf("decoding request body: %v", err))
	}
	if gvk.Kind != want.Kind || gvk.GroupVersion() != want.GroupVersion() {
		return apierrors.NewBadRequest(fmt.Sprintf("the body is a %s, this URL wants a %s", gvk, want))
	}
	if obj != into {
		return apierrors.NewBadRequest(fmt.Sprintf("the body is a %T, this URL wants a %s", obj, want))
	}
	return nil
}
