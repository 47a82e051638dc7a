package bench

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// histograms maps "verb resource" to the server's request latency histogram.
type histograms map[string]*dto.Histogram

// scrapeLatency reads apiserver_request_duration_seconds from /metrics.
func scrapeLatency(ctx context.Context, c kubernetes.Interface) (histograms, error) {
	raw, err := c.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out := histograms{}
	fam := fams["apiserver_request_duration_seconds"]
	if fam == nil {
		return out, nil
	}
	for _, m := range fam.Metric {
		var verb, res string
		for _, l := range m.Label {
			switch l.GetName() {
			case "verb":
				verb = l.GetValue()
			case "resource":
				res = l.GetValue()
			}
		}
		out[verb+" "+res] = m.Histogram
	}
	return out, nil
}

// serverQuantile estimates a quantile of the requests between two scrapes,
// interpolating inside the histogram bucket as Prometheus'
// histogram_quantile does.
func serverQuantile(before, after histograms, key string, q float64) (float64, uint64) {
	a := after[key]
	if a == nil {
		return 0, 0
	}
	b := before[key]
	type bucket struct {
		le    float64
		count float64
	}
	var bs []bucket
	for i, ab := range a.Bucket {
		c := float64(ab.GetCumulativeCount())
		if b != nil && i < len(b.Bucket) {
			c -= float64(b.Bucket[i].GetCumulativeCount())
		}
		bs = append(bs, bucket{ab.GetUpperBound(), c})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	total := float64(a.GetSampleCount())
	if b != nil {
		total -= float64(b.GetSampleCount())
	}
	if total == 0 {
		return 0, 0
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, bk := range bs {
		if bk.count >= rank {
			if bk.count == prevCount {
				return bk.le, uint64(total)
			}
			return prevLe + (bk.le-prevLe)*(rank-prevCount)/(bk.count-prevCount), uint64(total)
		}
		prevLe, prevCount = bk.le, bk.count
	}
	return prevLe, uint64(total) // beyond the last bucket
}

func serverLine(before, after histograms, key string) string {
	p50, n := serverQuantile(before, after, key, 0.50)
	p99, _ := serverQuantile(before, after, key, 0.99)
	return fmt.Sprintf("n=%d p50≈%.2fms p99≈%.2fms", n, p50*1000, p99*1000)
}
