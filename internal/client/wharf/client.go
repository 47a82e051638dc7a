// Package wharf is a typed client for the cluster service's wharf.dev/v1
// objects (cluster templates, clusters, node groups and cluster backups) and the informers
// built on it: what the wharf CLI and the cluster controller use. It
// speaks JSON: the kinds have no protobuf encoding.
package wharf

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// Scheme knows the wharf.dev/v1 types and the meta types the API answers
// with (Status, options); ParameterCodec encodes options as query parameters.
var (
	Scheme         = runtime.NewScheme()
	Codecs         = serializer.NewCodecFactory(Scheme)
	ParameterCodec = runtime.NewParameterCodec(Scheme)
)

func init() {
	utilruntime.Must(wharfv1.AddToScheme(Scheme))
	metav1.AddToGroupVersion(Scheme, metav1.SchemeGroupVersion)
}

// The clients of each kind: Get, List, Watch, Create, Update,
// UpdateStatus (clusters and node groups), Patch, Delete, DeleteCollection.
type (
	ClusterTemplateClient = gentype.ClientWithList[*wharfv1.ClusterTemplate, *wharfv1.ClusterTemplateList]
	ClusterClient         = gentype.ClientWithList[*wharfv1.Cluster, *wharfv1.ClusterList]
	NodeGroupClient       = gentype.ClientWithList[*wharfv1.NodeGroup, *wharfv1.NodeGroupList]
	ClusterBackupClient   = gentype.ClientWithList[*wharfv1.ClusterBackup, *wharfv1.ClusterBackupList]
)

// Client reaches the wharf.dev/v1 API of one server.
type Client struct {
	rest rest.Interface
}

// NewForConfig returns a client for the server of cfg (e.g. a kubeconfig's
// or the service's loopback configuration); cfg is not changed.
func NewForConfig(cfg *rest.Config) (*Client, error) {
	c := rest.CopyConfig(cfg)
	gv := wharfv1.SchemeGroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = runtime.ContentTypeJSON
	c.NegotiatedSerializer = Codecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("wharf.dev/v1 client for %s: %w", cfg.Host, err)
	}
	return New(rc), nil
}

// New returns a client over an existing REST client of wharf.dev/v1.
func New(rc rest.Interface) *Client { return &Client{rest: rc} }

// RESTClient is the underlying REST client.
func (c *Client) RESTClient() rest.Interface { return c.rest }

// ClusterTemplates returns a client of the templates in namespace ("" all
// namespaces, for List and Watch).
func (c *Client) ClusterTemplates(namespace string) *ClusterTemplateClient {
	return gentype.NewClientWithList("clustertemplates", c.rest, ParameterCodec, namespace,
		func() *wharfv1.ClusterTemplate { return &wharfv1.ClusterTemplate{} },
		func() *wharfv1.ClusterTemplateList { return &wharfv1.ClusterTemplateList{} })
}

// Clusters returns a client of the clusters in namespace ("" all).
func (c *Client) Clusters(namespace string) *ClusterClient {
	return gentype.NewClientWithList("clusters", c.rest, ParameterCodec, namespace,
		func() *wharfv1.Cluster { return &wharfv1.Cluster{} },
		func() *wharfv1.ClusterList { return &wharfv1.ClusterList{} })
}

// NodeGroups returns a client of the node groups in namespace ("" all).
func (c *Client) NodeGroups(namespace string) *NodeGroupClient {
	return gentype.NewClientWithList("nodegroups", c.rest, ParameterCodec, namespace,
		func() *wharfv1.NodeGroup { return &wharfv1.NodeGroup{} },
		func() *wharfv1.NodeGroupList { return &wharfv1.NodeGroupList{} })
}

// ClusterBackups returns a client of the cluster backups in namespace ("" all).
func (c *Client) ClusterBackups(namespace string) *ClusterBackupClient {
	return gentype.NewClientWithList("clusterbackups", c.rest, ParameterCodec, namespace,
		func() *wharfv1.ClusterBackup { return &wharfv1.ClusterBackup{} },
		func() *wharfv1.ClusterBackupList { return &wharfv1.ClusterBackupList{} })
}
