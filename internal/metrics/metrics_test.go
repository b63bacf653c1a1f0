package metrics

import (
	"database/sql"
	"testing"
)

// TestEveryCollectorRegistersTogether: serve registers every collector set on one registry; two sets
// that name the same metric panic at start (gatehouse_job_runs_total once did). Each constructor that
// takes the registry belongs here.
func TestEveryCollectorRegistersTogether(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("collectors collide: %v", r)
		}
	}()
	m := New("test")
	m.Database(func() sql.DBStats { return sql.DBStats{} }, func() bool { return true })
	m.ReadPipelines(func() (int64, int64) { return 3, 17 })
	NewJobs(m.Registry)
	NewPush(m.Registry)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fams {
		if seen[f.GetName()] {
			t.Errorf("metric %s gathered twice", f.GetName())
		}
		seen[f.GetName()] = true
		switch f.GetName() {
		case "gatehouse_db_read_pipelines_total", "gatehouse_db_pipelined_reads_total":
			want := map[string]float64{"gatehouse_db_read_pipelines_total": 3, "gatehouse_db_pipelined_reads_total": 17}[f.GetName()]
			if got := f.GetMetric()[0].GetCounter().GetValue(); got != want {
				t.Errorf("%s = %v, want %v", f.GetName(), got, want)
			}
		}
	}
	if !seen["gatehouse_db_read_pipelines_total"] || !seen["gatehouse_db_pipelined_reads_total"] {
		t.Error("the read pipeline counters are not gathered")
	}
}
