package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const metricsUsage = `usage: shmchan metrics -listen ADDR [-prefix P] [-path /metrics]

Serves the counters of every shmchan region in /dev/shm (or those whose
names start with P) to Prometheus over HTTP. Each scrape reads every
region afresh, read-only, as 'shmchan ls' does; nothing is cached and
nothing runs between scrapes. It runs until Ctrl-C (SIGINT or SIGTERM).

Metrics, each with the label channel="NAME" (the region's name):

  shmchan_values_sent_total          values sent (MPSC: claimed by senders)
  shmchan_values_received_total      values received (abandoned slots too)
  shmchan_abandoned_total            MPSC slots skipped: their sender died
  shmchan_fill                       values queued now
  shmchan_capacity                   slots
  shmchan_receiver_lag               values sent that a receiver has not
                                     received yet (tail count - its
                                     position), label entry="ENTRY": the
                                     receiver's role entry (0 in SPSC and
                                     MPSC; each broadcast receiver's own)
  shmchan_receiver_position          the next position a receiver takes:
                                     the head, a broadcast receiver's
                                     cursor, the position a work-queue
                                     receiver holds; label entry
  shmchan_receiver_values_total      values one work-queue or broadcast
                                     receiver received; label entry
  shmchan_receiver_sleeps_total      times the receiver slept
  shmchan_sender_sleeps_total        times a sender slept
  shmchan_sender_wakes_total         wake-ups senders gave a sleeping receiver
  shmchan_receiver_wakes_total       wake-ups the receiver gave sleeping senders
  shmchan_live_roles                 role holders alive, label role=
                                     "receiver" or "sender"
  shmchan_dead_roles                 roles whose holder died without letting go
  shmchan_closed                     1 once the channel is closed for sending
  shmchan_attached_processes         processes that have the region open
  shmchan_region_bytes               size of the region's file
  shmchan_region_valid               0 for a region whose header does not
                                     validate (it gets no other metrics)
  shmchan_channel_info               1, labels type, codec, topology, wait
  shmchan_regions                    regions exported (no channel label)

plus the exporter's own process_* metrics. The exporter needs to be able
to read the regions (run it as their owner, or as root) and to see the
processes that have them open (/proc) for shmchan_attached_processes.

  -listen ADDR  address to listen on, host:port (":9465" for every
                interface, "127.0.0.1:9465" for this machine only; port 0
                picks a free one); the address is printed when it listens
  -prefix P     only regions whose names start with P
  -path PATH    the URL path of the metrics (default /metrics)

Example:
  shmchan metrics -listen :9465 -prefix orders
  curl -s localhost:9465/metrics | grep shmchan_fill

Exit status: 0 after Ctrl-C, 1 if it cannot listen, 2 for a usage error.
`

func runMetrics(args []string) int {
	fset := flag.NewFlagSet("shmchan metrics", flag.ContinueOnError)
	listen := fset.String("listen", "", "address to listen on")
	prefix := fset.String("prefix", "", "only regions with this name prefix")
	path := fset.String("path", "/metrics", "URL path")
	operands, ok, code := parseArgs(fset, args, metricsUsage)
	if !ok {
		return code
	}
	switch {
	case len(operands) > 0:
		fmt.Fprintf(os.Stderr, "shmchan metrics: unexpected argument %q\n%s", operands[0], metricsUsage)
		return 2
	case *listen == "":
		fmt.Fprintf(os.Stderr, "shmchan metrics: -listen is required\n%s", metricsUsage)
		return 2
	case len(*path) == 0 || (*path)[0] != '/':
		fmt.Fprintf(os.Stderr, "shmchan metrics: -path must start with /\n%s", metricsUsage)
		return 2
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(*prefix), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle(*path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "shmchan metrics exporter: see %s\n", *path)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		errf("metrics", "%v", err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serving http://%s%s\n", ln.Addr(), *path)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		errf("metrics", "%v", err)
		return 1
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errf("metrics", "shutdown: %v", err)
	}
	return 0
}

// collector reads the regions on every scrape.
type collector struct {
	prefix string

	regions, valid, bytes, info, capacity, fill, closed, attached *prometheus.Desc
	sent, received, abandoned, rsleeps, ssleeps, swakes, rwakes   *prometheus.Desc
	lag, position, recvd, live, dead                              *prometheus.Desc
	listErr                                                       *prometheus.Desc
}

func newCollector(prefix string) *collector {
	ch := []string{"channel"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("shmchan_"+name, help, labels, nil)
	}
	return &collector{
		prefix:    prefix,
		regions:   d("regions", "Regions exported."),
		valid:     d("region_valid", "1 if the region's header validates, else 0.", ch...),
		bytes:     d("region_bytes", "Size of the region's file in bytes.", ch...),
		info:      d("channel_info", "Always 1; the labels describe the channel.", "channel", "type", "codec", "topology", "wait"),
		capacity:  d("capacity", "Slots in the ring.", ch...),
		fill:      d("fill", "Values queued now.", ch...),
		closed:    d("closed", "1 once the channel is closed for sending.", ch...),
		attached:  d("attached_processes", "Processes (other than the exporter) that have the region open.", ch...),
		sent:      d("values_sent_total", "Values sent (MPSC: claimed by senders).", ch...),
		received:  d("values_received_total", "Values received, abandoned slots included.", ch...),
		abandoned: d("abandoned_total", "MPSC slots skipped because their sender died.", ch...),
		rsleeps:   d("receiver_sleeps_total", "Times the receiver slept.", ch...),
		ssleeps:   d("sender_sleeps_total", "Times a sender slept.", ch...),
		swakes:    d("sender_wakes_total", "Wake-ups senders issued to a sleeping receiver.", ch...),
		rwakes:    d("receiver_wakes_total", "Wake-ups the receiver issued to sleeping senders.", ch...),
		lag:       d("receiver_lag", "Values sent that the receiver at this role entry has not received yet.", "channel", "entry"),
		position:  d("receiver_position", "Next position the receiver at this role entry takes (work queue: the one it holds).", "channel", "entry"),
		recvd:     d("receiver_values_total", "Values the work-queue or broadcast receiver at this role entry received.", "channel", "entry"),
		live:      d("live_roles", "Role holders whose process is alive.", "channel", "role"),
		dead:      d("dead_roles", "Roles whose holder died without letting go.", "channel", "role"),
		listErr:   d("list_error", "Reading /dev/shm failed."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.regions, c.valid, c.bytes, c.info, c.capacity, c.fill, c.closed, c.attached,
		c.sent, c.received, c.abandoned, c.rsleeps, c.ssleeps, c.swakes, c.rwakes, c.lag, c.position, c.recvd, c.live, c.dead, c.listErr} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snaps, err := snapshotAll(c.prefix)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.listErr, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.regions, float64(len(snaps)))
	for _, s := range snaps {
		n := s.Name
		gauge(c.bytes, float64(s.Size), n)
		gauge(c.attached, float64(len(s.Attached)), n)
		if !s.Valid {
			gauge(c.valid, 0, n)
			continue
		}
		gauge(c.valid, 1, n)
		gauge(c.info, 1, n, s.Type, s.Codec, s.Topology, s.Wait.String())
		gauge(c.capacity, float64(s.Capacity), n)
		lr, ls := s.liveRoles()
		dr, ds := s.deadRoles()
		gauge(c.live, float64(lr), n, "receiver")
		gauge(c.live, float64(ls), n, "sender")
		gauge(c.dead, float64(dr), n, "receiver")
		gauge(c.dead, float64(ds), n, "sender")
		if !s.HaveCounters {
			continue
		}
		counter(c.sent, s.Sent, n)
		counter(c.received, s.Received, n)
		counter(c.abandoned, s.Abandoned, n)
		counter(c.rsleeps, s.RecvSleeps, n)
		counter(c.ssleeps, s.SendSleeps, n)
		counter(c.swakes, s.SenderWakes, n)
		counter(c.rwakes, s.ReceiverWakes, n)
		gauge(c.closed, boolFloat(s.Closed), n)
		if s.FillOK {
			gauge(c.fill, float64(s.Fill), n)
		}
		for _, r := range s.Receivers {
			// A broadcast receiver that left (not joined) and is not
			// alive has no position any more; one that died joined
			// still holds the senders back, and shows.
			if s.Broadcast && !r.Joined && !r.Alive {
				continue
			}
			e := strconv.Itoa(r.Entry)
			if r.LagOK {
				gauge(c.lag, float64(r.Lag), n, e)
			}
			if r.PositionOK {
				gauge(c.position, float64(r.Position), n, e)
			}
			if r.HaveReceived {
				counter(c.recvd, r.Received, n, e)
			}
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
