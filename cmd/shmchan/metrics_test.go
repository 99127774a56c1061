package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/layout"
)

// startExporter runs 'shmchan metrics' on a free loopback port and
// returns its metrics URL; it is stopped with SIGINT when the test ends,
// and must exit 0.
func startExporter(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"metrics", "-listen", "127.0.0.1:0"}, args...)...)
	var errOut strings.Builder
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if err != nil || !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("metrics: first line %q, %v; stderr %s", line, err, errOut.String())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("metrics exited with %v after SIGINT; stderr %s", err, errOut.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("metrics did not stop on SIGINT")
		}
	})
	return url
}

// scrape fetches url and parses it with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d, %v\n%s", resp.StatusCode, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, body)
	}
	return fams
}

// metricValue returns the value of family name for the sample whose labels
// include all of want; ok false if there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, dto.MetricType, bool) {
	f := fams[name]
	if f == nil {
		return 0, 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), f.GetType(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), f.GetType(), true
		}
	}
	return 0, f.GetType(), false
}

func TestMetricsExporter(t *testing.T) {
	name := newName(t)
	c, err := shmchan.Create[rec](name, shmchan.WithCapacity(64))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	damaged := newName(t)
	quietRegion(t, damaged)
	damage(t, damaged, layout.OffTypeName, []byte("X"))
	url := startExporter(t, "-prefix", namePrefix())
	ch := map[string]string{"channel": name}

	// While values flow: the counters move between scrapes.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, received atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if c.Send(ctx, recValue(i)) == nil {
				sent.Add(1)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := c.Recv(ctx); err == nil {
				received.Add(1)
			}
		}
	}()
	var lastSent, lastRecv float64 = -1, -1
	for i := range 3 {
		for sent.Load() < int64(1000*(i+1)) {
			time.Sleep(time.Millisecond)
		}
		fams := scrape(t, url)
		s, typ, ok := metricValue(fams, "shmchan_values_sent_total", ch)
		r, _, ok2 := metricValue(fams, "shmchan_values_received_total", ch)
		if !ok || !ok2 || typ != dto.MetricType_COUNTER {
			t.Fatalf("scrape %d: no counters for %s (type %v)", i, name, typ)
		}
		if s <= lastSent || r <= lastRecv || r > s {
			t.Errorf("scrape %d: sent %v received %v after %v, %v: counters did not move", i, s, r, lastSent, lastRecv)
		}
		lastSent, lastRecv = s, r
	}
	cancel()
	wg.Wait()

	// Quiet: exact values.
	for {
		if _, err := c.TryRecv(); err != nil {
			break
		}
		received.Add(1)
	}
	sendRecs(t, c, 0, 10)
	for range 3 {
		if _, err := c.Recv(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	wantSent, wantRecv := float64(sent.Load()+10), float64(received.Load()+3)
	fams := scrape(t, url)
	for _, tc := range []struct {
		metric string
		labels map[string]string
		want   float64
		typ    dto.MetricType
	}{
		{"shmchan_values_sent_total", ch, wantSent, dto.MetricType_COUNTER},
		{"shmchan_values_received_total", ch, wantRecv, dto.MetricType_COUNTER},
		{"shmchan_fill", ch, 7, dto.MetricType_GAUGE},
		{"shmchan_capacity", ch, 64, dto.MetricType_GAUGE},
		{"shmchan_receiver_lag", map[string]string{"channel": name, "entry": "0"}, 7, dto.MetricType_GAUGE},
		{"shmchan_receiver_position", map[string]string{"channel": name, "entry": "0"}, wantRecv, dto.MetricType_GAUGE},
		{"shmchan_live_roles", map[string]string{"channel": name, "role": "receiver"}, 1, dto.MetricType_GAUGE},
		{"shmchan_live_roles", map[string]string{"channel": name, "role": "sender"}, 1, dto.MetricType_GAUGE},
		{"shmchan_dead_roles", map[string]string{"channel": name, "role": "sender"}, 0, dto.MetricType_GAUGE},
		{"shmchan_closed", ch, 0, dto.MetricType_GAUGE},
		{"shmchan_abandoned_total", ch, 0, dto.MetricType_COUNTER},
		{"shmchan_region_valid", ch, 1, dto.MetricType_GAUGE},
		{"shmchan_attached_processes", ch, 1, dto.MetricType_GAUGE}, // this test process
		{"shmchan_channel_info", map[string]string{"channel": name, "type": "main.rec", "codec": "raw", "topology": "spsc", "wait": "futex"}, 1, dto.MetricType_GAUGE},
		{"shmchan_region_valid", map[string]string{"channel": damaged}, 0, dto.MetricType_GAUGE},
		{"shmchan_regions", nil, 2, dto.MetricType_GAUGE},
	} {
		v, typ, ok := metricValue(fams, tc.metric, tc.labels)
		if !ok || v != tc.want || typ != tc.typ {
			t.Errorf("%s%v = %v (%v, present %v), want %v (%v)", tc.metric, tc.labels, v, typ, ok, tc.want, tc.typ)
		}
	}
	for _, m := range []string{"shmchan_receiver_sleeps_total", "shmchan_sender_sleeps_total", "shmchan_sender_wakes_total", "shmchan_receiver_wakes_total"} {
		if _, typ, ok := metricValue(fams, m, ch); !ok || typ != dto.MetricType_COUNTER {
			t.Errorf("%s missing or not a counter", m)
		}
	}
	if _, _, ok := metricValue(fams, "shmchan_capacity", map[string]string{"channel": damaged}); ok {
		t.Errorf("a damaged region has a capacity metric")
	}

	// Closing shows; a region created after the exporter started shows.
	c.CloseSend()
	late := newName(t)
	quietRegion(t, late)
	fams = scrape(t, url)
	if v, _, _ := metricValue(fams, "shmchan_closed", ch); v != 1 {
		t.Errorf("shmchan_closed after CloseSend = %v", v)
	}
	if v, _, ok := metricValue(fams, "shmchan_region_valid", map[string]string{"channel": late}); !ok || v != 1 {
		t.Errorf("a region created later is not exported")
	}
	if _, _, ok := metricValue(fams, "process_open_fds", nil); !ok {
		t.Errorf("no process metrics")
	}
}

func TestMetricsUsage(t *testing.T) {
	for _, args := range [][]string{{"metrics"}, {"metrics", "-listen", "127.0.0.1:0", "extra"}, {"metrics", "-listen", "x", "-path", "metrics"}} {
		if _, errOut, code := tool(t, args...); code != 2 || !strings.Contains(errOut, "usage: shmchan metrics") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if _, errOut, code := tool(t, "metrics", "-listen", "256.0.0.1:1"); code != 1 {
		t.Errorf("metrics on a bad address: exit %d, %q", code, errOut)
	}
}
