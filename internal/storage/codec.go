package storage

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// Codec turns objects into stored bytes and back. Types with generated
// protobuf code are stored as protobuf (Kubernetes' envelope, about 3x faster to
// decode than JSON); other types (e.g. the wharf.dev group) as JSON, and
// custom resources, whose kinds the scheme does not know, as JSON decoded
// into *unstructured.Unstructured. Decoding recognises all three.
type Codec struct {
	scheme  *runtime.Scheme
	proto   runtime.Encoder
	json    runtime.Encoder
	decoder runtime.Decoder
}

// NewCodec returns a codec for the types of scheme.
func NewCodec(scheme *runtime.Scheme) *Codec {
	cf := serializer.NewCodecFactory(scheme)
	return &Codec{
		scheme:  scheme,
		proto:   protobuf.NewSerializer(scheme, scheme),
		json:    json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{}),
		decoder: cf.UniversalDeserializer(),
	}
}

// encode returns obj's stored form: resourceVersion cleared, kind set.
func (c *Codec) encode(obj runtime.Object) ([]byte, error) {
	obj = obj.DeepCopyObject()
	if err := c.setKind(obj); err != nil {
		return nil, err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	m.SetResourceVersion("")
	enc := c.json
	if _, ok := obj.(interface{ Marshal() ([]byte, error) }); ok {
		enc = c.proto
	}
	return runtime.Encode(enc, obj)
}

// decode returns the object stored in data with resourceVersion rev and its kind set.
func (c *Codec) decode(data []byte, rev int64) (runtime.Object, error) {
	obj, _, err := c.decoder.Decode(data, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		// A custom resource: its kind is defined at run time, not in the scheme.
		obj, _, err = unstructured.UnstructuredJSONScheme.Decode(data, nil, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("decode stored object: %w", err)
	}
	if err := c.setKind(obj); err != nil {
		return nil, err
	}
	setRV(obj, rev)
	return obj, nil
}

func (c *Codec) setKind(obj runtime.Object) error {
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	return nil
}

// setRV sets the resourceVersion of an object this package owns.
func setRV(obj runtime.Object, rev int64) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetResourceVersion(strconv.FormatInt(rev, 10))
	}
}

// ParseRV parses a resourceVersion; "" is 0.
func ParseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid resource version %q", rv)
	}
	return n, nil
}
