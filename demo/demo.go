// Package demo runs kanca's real pipeline against a built-in Asterisk
// simulator that replays recorded calls from a real Asterisk over a real
// WebSocket, and a local receiver that prints each webhook as it arrives.
// It needs nothing but this binary: it is the first thing a newcomer runs.
package demo

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// traces are real ARI recordings: one file per call scenario.
//
//go:embed traces/*.ndjson
var traces embed.FS

// Options shape a demo run.
type Options struct {
	DB       string         // SQLite file; it is created if missing
	Pace     time.Duration  // pause between frames sent by the simulator
	Location *time.Location // ISO times in the webhooks
	Logger   *slog.Logger   // kanca's own logs; nil discards them
	Timeout  time.Duration  // give up waiting for deliveries after this long
}

// Summary is what a demo run did.
type Summary struct {
	Scenarios  int
	Frames     int
	Calls      int
	Hooks      int
	Expected   int            // deliveries the replayed calls should produce
	Delivered  int            // deliveries the receiver got
	ByEvent    map[string]int // deliveries by event_type
	ByFormat   map[string]int // deliveries by body format
	Duplicates int            // deliveries received more than once (same delivery id)
	Elapsed    time.Duration
}

// Scenarios lists the bundled recordings.
func Scenarios() []string {
	names, _ := fs.Glob(traces, "traces/*.ndjson")
	for i, n := range names {
		names[i] = strings.TrimSuffix(path.Base(n), ".ndjson")
	}
	sort.Strings(names)
	return names
}

func frames() ([][]byte, error) {
	var all [][]byte
	for _, name := range Scenarios() {
		f, err := traces.Open("traces/" + name + ".ndjson")
		if err != nil {
			return nil, err
		}
		fr, err := aritest.ReadNDJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("bundled trace %s: %w", name, err)
		}
		all = append(all, fr...)
	}
	return all, nil
}

// Run plays every bundled call through kanca and prints each webhook to w
// as the local receiver gets it. It returns when every expected delivery
// has arrived, or with an error when they do not within o.Timeout.
func Run(ctx context.Context, o Options, w io.Writer) (Summary, error) {
	start := time.Now()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	all, err := frames()
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Scenarios: len(Scenarios()), Frames: len(all), ByEvent: map[string]int{}, ByFormat: map[string]int{}}

	// What the calls should produce, from the same tracker, offline: the
	// demo's finish line, and the public numbers to bind hooks to.
	perNumber, calls, err := expected(all)
	if err != nil {
		return sum, err
	}
	sum.Calls = calls

	recv, err := startReceiver(w, o.Location)
	if err != nil {
		return sum, err
	}
	defer recv.close()

	store, err := hooks.Open(o.DB)
	if err != nil {
		return sum, err
	}
	defer store.Close()
	numbers := make([]string, 0, len(perNumber))
	for n := range perNumber {
		numbers = append(numbers, n)
	}
	sort.Strings(numbers)
	for _, n := range numbers {
		for _, f := range []formats.Format{formats.JSON, formats.Form} {
			_, err := store.AddHook(ctx, hooks.Hook{Number: n, URL: recv.url + "/" + string(f), Format: f,
				Events: hooks.AllEvents(), User: "demo", Password: "demo", Enabled: true})
			if err != nil {
				return sum, fmt.Errorf("demo hook for %s: %w", n, err)
			}
			sum.Hooks++
			sum.Expected += perNumber[n]
		}
	}
	fmt.Fprintf(w, "kanca demo: %d recorded calls from a real Asterisk, %d hooks (JSON and form for %s)\n\n",
		calls, sum.Hooks, strings.Join(numbers, ", "))

	ast := aritest.NewServer(aritest.Options{Pace: o.Pace})
	defer ast.Close()
	ast.Play(all...)
	tcfg := cdr.DefaultConfig()
	src, err := ari.New(ari.Config{URL: ast.URL, User: "kanca", Password: "kanca", Logger: log, ReadsVariable: tcfg.ReadsVariable})
	if err != nil {
		return sum, err
	}
	p := &pipeline.Pipeline{
		Source:     src,
		Tracker:    cdr.NewTracker(tcfg),
		Outbox:     hooks.NewOutbox(store, hooks.OutboxOptions{Encoding: hooks.Encoding{Location: o.Location}}),
		Dispatcher: hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: log, PollInterval: 100 * time.Millisecond}),
		Journal:    store,
		Logger:     log,
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	timeout := time.NewTimer(o.Timeout)
	defer timeout.Stop()
	var waitErr error
	for recv.count() < sum.Expected && waitErr == nil {
		select {
		case <-recv.arrived:
		case <-ctx.Done():
			waitErr = ctx.Err()
		case <-timeout.C:
			waitErr = fmt.Errorf("only %d of %d webhooks arrived within %s", recv.count(), sum.Expected, o.Timeout)
		case err := <-done:
			waitErr = fmt.Errorf("pipeline stopped early: %v", err)
			done <- err
		}
	}
	stop()
	if err := <-done; err != nil && waitErr == nil {
		waitErr = err
	}
	recv.mu.Lock()
	sum.Delivered = len(recv.ids)
	sum.Duplicates = recv.dups
	for k, v := range recv.byEvent {
		sum.ByEvent[k] = v
	}
	for k, v := range recv.byFormat {
		sum.ByFormat[k] = v
	}
	recv.mu.Unlock()
	sum.Elapsed = time.Since(start)
	return sum, waitErr
}

// expected counts, per public number, the events the frames produce.
func expected(all [][]byte) (map[string]int, int, error) {
	tr := cdr.NewTracker(cdr.DefaultConfig())
	perNumber := map[string]int{}
	calls := map[string]bool{}
	for i, fr := range all {
		in, ok, err := ari.Decode(fr)
		if err != nil {
			return nil, 0, fmt.Errorf("bundled frame %d: %w", i, err)
		}
		if !ok {
			continue
		}
		for _, ev := range tr.Handle(in) {
			perNumber[ev.Number]++
			calls[ev.CallID] = true
		}
	}
	return perNumber, len(calls), nil
}

// receiver is the local webhook endpoint that prints what it gets.
type receiver struct {
	srv     *http.Server
	url     string
	w       io.Writer
	loc     *time.Location
	arrived chan struct{}

	mu       sync.Mutex
	ids      map[string]bool
	dups     int
	byEvent  map[string]int
	byFormat map[string]int
}

func startReceiver(w io.Writer, loc *time.Location) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo receiver: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String(), w: w, loc: loc, arrived: make(chan struct{}, 1),
		ids: map[string]bool{}, byEvent: map[string]int{}, byFormat: map[string]int{}}
	if r.loc == nil {
		r.loc = time.Local
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) close() { r.srv.Close() }

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if u, p, ok := req.BasicAuth(); !ok || u != "demo" || p != "demo" {
		http.Error(w, "bad credentials", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	format := strings.TrimPrefix(req.URL.Path, "/")
	line, typ, err := describe(format, body, r.loc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := req.Header.Get("X-Kanca-Delivery")
	r.mu.Lock()
	if r.ids[id] {
		r.dups++
	} else {
		r.ids[id] = true
		r.byEvent[typ]++
		r.byFormat[format]++
		fmt.Fprintf(r.w, "%-5s %s\n", format, line)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// describe reads a webhook body as a receiver would and says it in a line.
func describe(format string, body []byte, loc *time.Location) (line, typ string, err error) {
	get := func(string) string { return "" }
	switch format {
	case "json":
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return "", "", err
		}
		get = func(k string) string {
			var v any = m
			for _, part := range strings.Split(k, ".") {
				mm, ok := v.(map[string]any)
				if !ok {
					return ""
				}
				v = mm[part]
			}
			if v == nil {
				return ""
			}
			return fmt.Sprint(v)
		}
	case "form":
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return "", "", err
		}
		get = func(k string) string {
			parts := strings.Split(k, ".")
			key := parts[0]
			for _, p := range parts[1:] {
				key += "[" + p + "]"
			}
			return q.Get(key)
		}
	default:
		return "", "", errors.New("unknown format " + format)
	}
	typ = get("event_type")
	var ts string
	var usec int64
	if _, err := fmt.Sscan(get("timestamp"), &usec); err == nil {
		ts = time.UnixMicro(usec).In(loc).Format("15:04:05.000")
	}
	line = fmt.Sprintf("%s %-20s %s %s -> %s", ts, typ, get("direction"), get("caller"), get("callee"))
	switch typ {
	case "call_init_extension", "call_init_group", "call_init_menu":
		line += "  destination=" + get("destination")
	case "call_hangup", "missing_call":
		line += fmt.Sprintf("  cause=%s detail=%s talk=%ss", get("hangup_cause"), get("hangup_detail"), get("talk_duration"))
	}
	return line, typ, nil
}
