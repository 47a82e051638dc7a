package stream_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"wharf.dev/wharf/internal/agent/stats"
	"wharf.dev/wharf/internal/agent/stream"
	"wharf.dev/wharf/internal/agent/stream/streamtest"
)

type fixedStats struct{ sum *stats.Summary }

func (f fixedStats) Summary(context.Context) (*stats.Summary, error) { return f.sum, nil }

// TestSummary: /stats/summary answers the collector's summary as JSON,
// and 404 on an agent without one.
func TestSummary(t *testing.T) {
	cores := uint64(250_000_000)
	sum := &stats.Summary{Node: stats.NodeStats{NodeName: "n1", CPU: &stats.CPUStats{UsageNanoCores: &cores}}, Pods: []stats.PodStats{
		{PodRef: stats.PodReference{Name: "web", Namespace: "ns", UID: "u1"}, Containers: []stats.ContainerStats{{Name: "app"}}},
	}}
	rt := streamtest.NewRuntime(t)
	for _, tt := range []struct {
		src  stream.StatsSource
		code int
	}{{fixedStats{sum}, http.StatusOK}, {nil, http.StatusNotFound}} {
		s := stream.New(stream.Config{Runtime: rt, Logger: slog.New(slog.DiscardHandler), Stats: tt.src})
		srv := httptest.NewServer(s.Handler())
		resp, err := http.Get(srv.URL + "/stats/summary")
		if err != nil {
			t.Fatal(err)
		}
		var got stats.Summary
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tt.code {
			t.Fatalf("code %d, want %d", resp.StatusCode, tt.code)
		}
		if tt.code == http.StatusOK && (err != nil || got.Node.NodeName != "n1" || *got.Node.CPU.UsageNanoCores != cores || got.Pods[0].PodRef.UID != "u1") {
			t.Errorf("summary %+v (%v)", got, err)
		}
	}
}
