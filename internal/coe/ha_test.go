package coe

import (
	"errors"
	"testing"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

func view(name, id, leader string, applied uint64, voters ...string) memberView {
	st := wire.EtcdStatus{Name: name, ID: id, Leader: leader, AppliedIndex: applied, Revision: int64(applied)}
	for _, v := range voters {
		st.Members = append(st.Members, wire.EtcdMember{ID: v, Name: v})
	}
	return memberView{host: provider.Host{Name: name}, status: st}
}

func down(name string) memberView {
	return memberView{host: provider.Host{Name: name}, err: errors.New("connection refused")}
}

func TestEtcdVerdict(t *testing.T) {
	all := []string{"1", "2", "3"}
	for _, tc := range []struct {
		name   string
		views  []memberView
		quorum bool
		etcd   string
		want   map[string]string
	}{{
		name:   "all up",
		views:  []memberView{view("m0", "1", "1", 10, all...), view("m1", "2", "1", 10, all...), view("m2", "3", "1", 9, all...)},
		quorum: true, etcd: "3 of 3 members up",
		want: map[string]string{"m0": "ok, etcd leader", "m1": "ok", "m2": "ok"},
	}, {
		name:   "one down",
		views:  []memberView{view("m0", "1", "2", 10, all...), view("m1", "2", "2", 10, all...), down("m2")},
		quorum: true, etcd: "2 of 3 members up",
		want: map[string]string{"m1": "ok, etcd leader", "m2": "etcd member unreachable: connection refused"},
	}, {
		name:   "two down: no leader",
		views:  []memberView{view("m0", "1", "", 10, all...), down("m1"), down("m2")},
		quorum: false, etcd: "etcd quorum lost: 1 of 3 members",
		want: map[string]string{"m0": "etcd member has no leader"},
	}, {
		name:   "a joining learner counts for nothing",
		views:  []memberView{{host: provider.Host{Name: "m2"}, status: wire.EtcdStatus{ID: "3", Learner: true, Leader: "1"}}, view("m0", "1", "1", 10, "1", "2"), down("m1")},
		quorum: false, etcd: "etcd quorum lost: 1 of 2 members",
		want: map[string]string{"m2": "etcd member joining (learner)"},
	}, {
		name:   "nothing answers",
		views:  []memberView{down("m0"), down("m1"), down("m2")},
		quorum: false, etcd: "etcd quorum lost: 0 of 3 members",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			q, reasons := etcdVerdict(tc.views)
			if q != tc.quorum || reasons["etcd"] != tc.etcd {
				t.Errorf("quorum %v, etcd %q; want %v, %q", q, reasons["etcd"], tc.quorum, tc.etcd)
			}
			for k, v := range tc.want {
				if reasons[k] != v {
					t.Errorf("reason of %s %q, want %q", k, reasons[k], v)
				}
			}
			if mastersHealthy(reasons) != (tc.quorum && len(tc.want) == 3) {
				t.Errorf("mastersHealthy %v with reasons %v", mastersHealthy(reasons), reasons)
			}
		})
	}
}

func TestMostUpToDate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		views []memberView
		want  string
	}{
		{"highest applied index", []memberView{view("m0", "1", "", 7), view("m1", "2", "", 9), view("m2", "3", "", 8)}, "m1"},
		{"the unreachable are skipped", []memberView{down("m0"), view("m1", "2", "", 3), down("m2")}, "m1"},
		{"first by name on a tie", []memberView{view("m0", "1", "", 5), view("m1", "2", "", 5)}, "m0"},
		{"none", []memberView{down("m0"), down("m1")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if b := mostUpToDate(tc.views); b != nil {
				got = b.host.Name
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHAArgs(t *testing.T) {
	s := &hostSpecs{apiPort: 6443, vip: "10.0.0.17", bootstrapMaster: "c-master-0"}
	has := func(args []string, flag string) bool {
		for _, a := range args {
			if a == flag {
				return true
			}
		}
		return false
	}
	if has(s.haArgs("c-master-0"), "--join") {
		t.Error("the first master of a new cluster joins: it would wait for itself")
	}
	if !has(s.haArgs("c-master-1"), "--join") {
		t.Error("a second master does not join")
	}
	s.joinMasters = true
	if !has(s.haArgs("c-master-0"), "--join") {
		t.Error("a first master made again (recovery) starts a cluster of its own")
	}
}
