package bench

// The -json file. Its schema is the command's: the field names and tags
// here are what readers of the file rely on.

import (
	"encoding/json"
	"math"
	"os"
	"time"
)

// The JSON file.
type jsonFile struct {
	Machine machineInfo `json:"machine"`
	Config  struct {
		Runs           int     `json:"runs"`
		RunsPlanned    int     `json:"runs_planned"`
		Quick          bool    `json:"quick"`
		BudgetMS       float64 `json:"budget_ms"`
		LatencyMS      float64 `json:"latency_budget_ms"`
		LatencySamples int     `json:"latency_samples"`
		Sizes          []int   `json:"sizes"`
	} `json:"config"`
	Started    string              `json:"started"`
	ElapsedSec float64             `json:"elapsed_sec"`
	LoadEnd    string              `json:"load_end"`
	Throughput []jsonRow           `json:"throughput"`
	Latency    []jsonLatency       `json:"latency"`
	Targets    []target            `json:"targets"`
	Transports map[string][]string `json:"transports"` // section -> keys
}

type jsonRow struct {
	Key              string   `json:"key"`
	Name             string   `json:"name"`
	Section          string   `json:"section"`
	Size             int      `json:"size"`
	Batch            int      `json:"batch,omitempty"`
	NA               string   `json:"na,omitempty"`
	Baseline         string   `json:"baseline,omitempty"` // fan-out rows: the key of the row compared with
	MsgPerSec        *summary `json:"msg_per_sec,omitempty"`
	MBPerSec         *summary `json:"mb_per_sec,omitempty"`
	SyscallsPerValue *summary `json:"syscalls_per_value,omitempty"`
	AllocsPerValue   *summary `json:"allocs_per_value,omitempty"`
}

type jsonLatency struct {
	Key              string   `json:"key"`
	Name             string   `json:"name"`
	P50ns            *summary `json:"p50_ns"`
	P90ns            *summary `json:"p90_ns"`
	P99ns            *summary `json:"p99_ns"`
	P999ns           *summary `json:"p999_ns"`
	RoundTripsPerSec *summary `json:"round_trips_per_sec"`
	SyscallsPerRT    *summary `json:"syscalls_per_round_trip,omitempty"`
	AllocsPerRT      *summary `json:"allocs_per_round_trip,omitempty"`
}

func jsonOf(r *results) jsonFile {
	var f jsonFile
	f.Machine = r.machine
	f.Config.Runs, f.Config.RunsPlanned, f.Config.Quick = r.cfg.Runs, max(r.cut, r.cfg.Runs), r.cfg.Quick
	f.Config.BudgetMS = float64(r.cfg.Budget) / float64(time.Millisecond)
	f.Config.LatencyMS = float64(r.cfg.LatencyBudget) / float64(time.Millisecond)
	f.Config.LatencySamples, f.Config.Sizes = r.cfg.LatencySamples, r.cfg.Sizes
	f.Started = r.started.UTC().Format(time.RFC3339)
	f.ElapsedSec = math.Round(r.elapsed.Seconds()*10) / 10
	f.LoadEnd = r.loadEnd
	f.Targets = r.targets
	f.Transports = map[string][]string{}
	seen := map[string]bool{}
	for _, c := range r.cells {
		if !seen[c.row.key] {
			seen[c.row.key] = true
			f.Transports[c.row.section] = append(f.Transports[c.row.section], c.row.key)
		}
		if c.row.section == sectionLatency {
			f.Latency = append(f.Latency, jsonLatency{
				Key: c.row.key, Name: c.row.name,
				P50ns: c.lat(0), P90ns: c.lat(1), P99ns: c.lat(2), P999ns: c.lat(3),
				RoundTripsPerSec: c.rate(), SyscallsPerRT: c.syscalls(), AllocsPerRT: c.allocs(),
			})
			continue
		}
		row := jsonRow{Key: c.row.key, Name: c.row.name, Section: c.row.section, Size: c.size, NA: c.na, Baseline: c.row.base}
		if c.row.section == sectionBatch {
			_, row.Batch = geometry(c.size)
		}
		if c.na == "" {
			row.MsgPerSec = c.rate()
			size := float64(c.size)
			row.MBPerSec = c.stat(func(s sample) float64 { return s.Rate * size / 1e6 })
			row.SyscallsPerValue, row.AllocsPerValue = c.syscalls(), c.allocs()
		}
		f.Throughput = append(f.Throughput, row)
	}
	return f
}

func writeJSON(path string, r *results) error {
	b, err := json.MarshalIndent(jsonOf(r), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
