package httpapi

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kanca/kanca/hooks"
)

// Attempts turns the dispatcher's attempt reports into the delivery
// latency histogram. Give its Observe to hooks.DispatchOptions.OnAttempt.
type Attempts struct {
	latency *prometheus.HistogramVec
}

// NewAttempts returns an empty latency histogram.
func NewAttempts() *Attempts {
	return &Attempts{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "kanca_delivery_latency_seconds",
		Help: "Time from sending a webhook to reading its answer, per hook.",
		// Receivers answer in milliseconds to seconds; hooks time out at
		// up to minutes.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"hook"})}
}

// Observe records one attempt; safe for concurrent use.
func (a *Attempts) Observe(r hooks.AttemptReport) {
	a.latency.WithLabelValues(strconv.FormatInt(r.HookID, 10)).Observe(r.Latency.Seconds())
}

// collector reads the components' Stats snapshots at scrape time.
type collector struct {
	cfg Config

	frames, malformed, connected, reconnects   *prometheus.Desc
	eslEvents, eslMalformed                    *prometheus.Desc
	eslConnected, eslReconnects                *prometheus.Desc
	liveCalls, pbxEvents, callEvents, storeErr *prometheus.Desc
	uncommitted                                *prometheus.Desc
	depth, inFlight, attempts                  *prometheus.Desc
}

func newCollector(cfg Config) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		cfg:        cfg,
		frames:     d("kanca_ari_frames_total", "ARI WebSocket frames received, by ARI event type.", "type"),
		malformed:  d("kanca_ari_malformed_frames_total", "ARI frames skipped because they did not decode."),
		connected:  d("kanca_ari_connected", "1 while the ARI event WebSocket is connected, else 0."),
		reconnects: d("kanca_ari_reconnects_total", "ARI connection attempts after the first success, and every failed one: a PBX that never answers counts up too."),

		eslEvents:     d("kanca_esl_events_total", "FreeSWITCH event socket events received, by Event-Name (CUSTOM ones with their subclass).", "name"),
		eslMalformed:  d("kanca_esl_malformed_events_total", "FreeSWITCH events skipped because they did not decode."),
		eslConnected:  d("kanca_esl_connected", "1 while the FreeSWITCH event socket is connected, else 0."),
		eslReconnects: d("kanca_esl_reconnects_total", "Event socket connection attempts after the first success, and every failed one."),

		liveCalls:   d("kanca_live_calls", "Calls in progress as the tracker sees them."),
		pbxEvents:   d("kanca_pbx_events_total", "PBX events fed to the call tracker."),
		callEvents:  d("kanca_call_events_total", "Call events committed to the outbox."),
		storeErr:    d("kanca_store_errors_total", "Failed outbox commits (each retried)."),
		uncommitted: d("kanca_uncommitted_inputs", "PBX events the tracker took that no outbox commit holds yet: what a crash now would lose."),
		depth:       d("kanca_outbox_deliveries", "Deliveries in the database, by state.", "state"),
		inFlight:    d("kanca_deliveries_in_flight", "Webhook requests being sent now."),
		attempts:    d("kanca_delivery_attempts_total", "Delivery attempts by hook and outcome (delivered, failed: will retry, dead, gone: 410).", "hook", "outcome"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.frames, c.malformed, c.connected, c.reconnects,
		c.eslEvents, c.eslMalformed, c.eslConnected, c.eslReconnects, c.liveCalls,
		c.pbxEvents, c.callEvents, c.storeErr, c.uncommitted, c.depth, c.inFlight, c.attempts} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.cfg.ARI != nil {
		st := c.cfg.ARI.Stats()
		for typ, n := range st.ByType {
			counter(c.frames, float64(n), typ)
		}
		counter(c.malformed, float64(st.Malformed))
		gauge(c.connected, b2f(st.Connected))
		counter(c.reconnects, float64(st.Reconnects+st.Failures))
	}
	if c.cfg.ESL != nil {
		st := c.cfg.ESL.Stats()
		for name, n := range st.ByName {
			counter(c.eslEvents, float64(n), name)
		}
		counter(c.eslMalformed, float64(st.Malformed))
		gauge(c.eslConnected, b2f(st.Connected))
		counter(c.eslReconnects, float64(st.Reconnects+st.Failures))
	}
	if c.cfg.Pipeline != nil {
		st := c.cfg.Pipeline.Stats()
		gauge(c.liveCalls, float64(st.LiveCalls))
		counter(c.pbxEvents, float64(st.Inputs))
		counter(c.callEvents, float64(st.Events))
		counter(c.storeErr, float64(st.StoreErrors))
		gauge(c.uncommitted, float64(st.Queued))
	}
	if c.cfg.Dispatcher != nil {
		st := c.cfg.Dispatcher.Stats()
		gauge(c.inFlight, float64(st.InFlight))
		for id, n := range st.ByHook {
			hook := strconv.FormatInt(id, 10)
			counter(c.attempts, float64(n.Delivered), hook, string(hooks.OutcomeDelivered))
			counter(c.attempts, float64(n.Failed), hook, string(hooks.OutcomeFailed))
			counter(c.attempts, float64(n.Dead), hook, string(hooks.OutcomeDead))
			counter(c.attempts, float64(n.Gone), hook, string(hooks.OutcomeGone))
		}
	}
	if c.cfg.Store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		depth, err := c.cfg.Store.Depth(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.depth, err)
			return
		}
		for st, n := range depth {
			gauge(c.depth, float64(n), string(st))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// dbTimeout bounds every database query the server makes for a request.
const dbTimeout = 5 * time.Second
