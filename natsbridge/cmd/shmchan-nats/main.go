package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmchan/shmchan"
	"github.com/shmchan/shmchan/natsbridge"
)

const usage = `usage: shmchan-nats out|in [flags] CHANNEL

  out   publish every value of CHANNEL to a JetStream subject
  in    send every message of a JetStream consumer into CHANNEL

Run 'shmchan-nats out -h' or 'shmchan-nats in -h' for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type config struct {
	dir                      string // "out" or "in"
	channel                  string
	servers                  string
	embedded                 bool
	store                    string
	subject, stream, durable string
	creds                    string
	tlsCert, tlsKey, tlsCA   string
	wait                     bool
	progress                 string
	window, batch            int
}

// run is the command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "out" && args[0] != "in") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	c := config{dir: args[0]}
	fl := flag.NewFlagSet("shmchan-nats "+c.dir, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&c.servers, "server", nats.DefaultURL, "NATS server URL (several: comma separated)")
	fl.BoolVar(&c.embedded, "embedded", false, "start an in-process NATS server with JetStream, listening at -server's host:port")
	fl.StringVar(&c.store, "store", "", "JetStream store directory of the -embedded server (default: a temporary directory, removed at the end)")
	fl.StringVar(&c.subject, "subject", "", "subject (default shmchan.CHANNEL)")
	fl.StringVar(&c.stream, "stream", "", "stream, created with the subject if absent (default SHMCHAN_CHANNEL)")
	if c.dir == "in" {
		fl.StringVar(&c.durable, "consumer", "", "durable pull consumer, created if absent (default shmchan-CHANNEL)")
		fl.IntVar(&c.batch, "batch", natsbridge.DefaultBatch, "messages per fetch")
	} else {
		fl.IntVar(&c.window, "window", natsbridge.DefaultWindow, "publishes awaiting their acknowledgement")
	}
	fl.StringVar(&c.creds, "creds", "", "NATS user credentials file (JWT and NKey seed)")
	fl.StringVar(&c.tlsCert, "tlscert", "", "TLS client certificate file")
	fl.StringVar(&c.tlsKey, "tlskey", "", "TLS client private key file")
	fl.StringVar(&c.tlsCA, "tlsca", "", "TLS CA certificates file, to verify the server")
	fl.BoolVar(&c.wait, "wait", true, "wait for the channel to exist")
	fl.StringVar(&c.progress, "progress", "auto", "progress line on standard error: auto (when it is a terminal), on, off")
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: shmchan-nats %s [flags] CHANNEL\n\nflags:\n", c.dir)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return 2
	}
	c.channel = fl.Arg(0)
	base := token(c.channel)
	if c.subject == "" {
		c.subject = "shmchan." + base
	}
	if c.stream == "" {
		c.stream = "SHMCHAN_" + strings.ToUpper(base)
	}
	if c.durable == "" {
		c.durable = "shmchan-" + base
	}
	if err := c.run(ctx, stderr); err != nil {
		fmt.Fprintf(stderr, "shmchan-nats %s: %v\n", c.dir, err)
		return 1
	}
	return 0
}

// token makes a channel name usable in subjects and stream names.
func token(name string) string {
	name = strings.TrimPrefix(name, "/")
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

func (c *config) run(ctx context.Context, stderr io.Writer) error {
	p := newPrinter(stderr, c.progress)
	if c.embedded {
		srv, tmp, err := c.startServer()
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
			if tmp != "" {
				os.RemoveAll(tmp)
			}
		}()
		p.log("embedded NATS server with JetStream at %s (store %s)", srv.ClientURL(), srv.JetStreamConfig().StoreDir)
	}
	nc, err := nats.Connect(c.servers, c.natsOptions(p)...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.servers, err)
	}
	defer nc.Close()
	for said := false; !nc.IsConnected(); said = true {
		if !said {
			p.log("waiting for the NATS server at %s", c.servers)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(4000, 2*c.window)))
	if err != nil {
		return err
	}
	stream, err := c.ensureStream(ctx, js)
	if err != nil {
		return err
	}
	if err := c.waitChannel(ctx, p); err != nil {
		return err
	}
	var counters natsbridge.Counters
	opts := []natsbridge.Option{
		natsbridge.WithCounters(&counters),
		natsbridge.WithErrorHandler(func(err error) { p.log("%v", err) }),
	}
	var lag func() string
	var bridge func() error
	if c.dir == "out" {
		opts = append(opts, natsbridge.WithWindow(c.window))
		rc, err := shmchan.OpenRaw(c.channel)
		if err != nil {
			return err
		}
		defer rc.Close()
		lag = func() string { return fmt.Sprintf("%d queued in the channel", rc.Len()) }
		p.log("out: channel %s (%s) → subject %s, stream %s", c.channel, describe(rc.Info()), c.subject, c.stream)
		bridge = func() error { return natsbridge.Out(ctx, c.channel, js, c.subject, opts...) }
	} else {
		opts = append(opts, natsbridge.WithBatch(c.batch))
		cons, err := c.ensureConsumer(ctx, stream)
		if err != nil {
			return err
		}
		lag = func() string {
			ictx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			ci, err := cons.Info(ictx)
			if err != nil {
				return "lag unknown"
			}
			return fmt.Sprintf("%d behind in the stream", ci.NumPending+uint64(ci.NumAckPending))
		}
		rc, err := shmchan.OpenRaw(c.channel)
		if err != nil {
			return err
		}
		info := rc.Info()
		rc.Close()
		p.log("in: stream %s, consumer %s → channel %s (%s)", c.stream, c.durable, c.channel, describe(info))
		bridge = func() error { return natsbridge.In(ctx, cons, c.channel, opts...) }
	}
	done := make(chan error, 1)
	go func() { done <- bridge() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	lastAt := time.Now()
	for {
		select {
		case err := <-done:
			p.end()
			n := counters.Values.Load()
			switch {
			case err == nil:
				p.log("%s: %d values; the channel was closed (close marker %s)", c.dir, n, map[string]string{"out": "published", "in": "received"}[c.dir])
				if c.embedded {
					// The other side may not have read everything yet.
					p.log("the embedded server stays up for the other side; Ctrl-C to stop it")
					<-ctx.Done()
				}
				return nil
			case ctx.Err() != nil && errors.Is(err, ctx.Err()):
				p.log("%s: stopped after %d values", c.dir, n)
				return nil
			}
			return err
		case now := <-tick.C:
			n := counters.Values.Load()
			r := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			p.status("%s %s: %d values, %.0f values/s, %s, %d retries", c.dir, c.channel, n, r, lag(), counters.Retries.Load())
		}
	}
}

func describe(info shmchan.RawInfo) string {
	return fmt.Sprintf("%s values, codec %s, %d slots", info.Type, info.Codec, info.Capacity)
}

func (c *config) natsOptions(p *printer) []nats.Option {
	opts := []nats.Option{
		nats.Name("shmchan-nats " + c.dir + " " + c.channel),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// Refuse to publish while reconnecting rather than buffer: Out
		// then waits for the connection and keeps the stream in order.
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true), // a server not up yet is waited for
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				p.log("disconnected: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { p.log("reconnected to %s", nc.ConnectedUrlRedacted()) }),
	}
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	if c.tlsCert != "" || c.tlsKey != "" {
		opts = append(opts, nats.ClientCert(c.tlsCert, c.tlsKey))
	}
	if c.tlsCA != "" {
		opts = append(opts, nats.RootCAs(c.tlsCA))
	}
	return opts
}

// startServer starts the -embedded server at the first -server address.
// Without -store it stores in a new temporary directory, returned to be
// removed at the end.
func (c *config) startServer() (_ *server.Server, tmp string, err error) {
	u, err := url.Parse(strings.Split(c.servers, ",")[0])
	if err != nil {
		return nil, "", fmt.Errorf("-server: %w", err)
	}
	host, port := u.Hostname(), 4222
	if ps := u.Port(); ps != "" {
		if _, err := fmt.Sscan(ps, &port); err != nil {
			return nil, "", fmt.Errorf("-server: port %q", ps)
		}
	}
	store := c.store
	if store == "" {
		if tmp, err = os.MkdirTemp("", "shmchan-nats-"); err != nil {
			return nil, "", err
		}
		store = tmp
	}
	srv, err := server.NewServer(&server.Options{
		Host:      host,
		Port:      port,
		JetStream: true,
		StoreDir:  store,
		NoSigs:    true,
		NoLog:     true,
	})
	if err == nil {
		go srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			srv.Shutdown()
			err = fmt.Errorf("embedded server did not start on %s", net.JoinHostPort(host, fmt.Sprint(port)))
		}
	}
	if err != nil {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		return nil, "", err
	}
	return srv, tmp, nil
}

func (c *config) ensureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, c.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       c.stream,
			Subjects:   []string{c.subject},
			Storage:    jetstream.FileStorage,
			Duplicates: 2 * time.Minute,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // the other side was quicker
			s, err = js.Stream(ctx, c.stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", c.stream, err)
	}
	return s, nil
}

func (c *config) ensureConsumer(ctx context.Context, s jetstream.Stream) (jetstream.Consumer, error) {
	cons, err := s.Consumer(ctx, c.durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		cons, err = s.CreateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       c.durable,
			AckPolicy:     jetstream.AckExplicitPolicy,
			FilterSubject: c.subject,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", c.durable, err)
	}
	return cons, nil
}

// waitChannel waits for the channel to exist (if -wait).
func (c *config) waitChannel(ctx context.Context, p *printer) error {
	for said := false; ; said = true {
		rc, err := shmchan.OpenRaw(c.channel)
		if err == nil {
			return rc.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) || !c.wait {
			return err
		}
		if !said {
			p.log("waiting for channel %s to be created", c.channel)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printer writes log lines and, on a terminal, one progress line that log
// lines do not break.
type printer struct {
	mu     sync.Mutex
	w      io.Writer
	status func(format string, args ...any)
	live   bool // a progress line is showing
}

func newPrinter(w io.Writer, mode string) *printer {
	p := &printer{w: w}
	on := mode == "on"
	if mode == "auto" {
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	}
	p.status = func(string, ...any) {}
	if on {
		p.status = func(format string, args ...any) {
			p.mu.Lock()
			defer p.mu.Unlock()
			fmt.Fprintf(p.w, "\r\033[K"+format, args...)
			p.live = true
		}
	}
	return p
}

func (p *printer) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
}

func (p *printer) endLocked() {
	if p.live {
		fmt.Fprintln(p.w)
		p.live = false
	}
}

func (p *printer) log(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endLocked()
	fmt.Fprintf(p.w, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
