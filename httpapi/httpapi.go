// Package httpapi is kanca's HTTP side: Prometheus metrics, a health check
// and a read-only JSON view of stored calls and deliveries. It reads what
// the other packages already keep (their Stats snapshots, the database) and
// changes nothing.
//
// The API has no authentication: bind it to loopback or a management
// network.
package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
	"github.com/kanca/kanca/status"
	"github.com/kanca/kanca/version"
)

// Config names what the server reads. Every source but Store is optional:
// a nil one is left out of the metrics and of the health check.
type Config struct {
	Store *hooks.Store
	// ARI or ESL is the PBX source kanca runs with: Asterisk's or
	// FreeSWITCH's.
	ARI        interface{ Stats() ari.Stats }
	ESL        interface{ Stats() esl.Stats }
	Pipeline   interface{ Stats() pipeline.Stats }
	Dispatcher interface{ Stats() hooks.DispatchStats }
	// Attempts feeds the latency histogram; nil: no histogram.
	Attempts *Attempts
	// Cluster is set on a listener (kanca run --nats): the hooks and the
	// deliveries live in the NATS cluster, not in Store.
	Cluster bool
	Logger  *slog.Logger // default slog.Default()
}

// MaxListLimit bounds GET /deliveries?limit=.
const MaxListLimit = 1000

// Handler serves:
//
//	GET /metrics           Prometheus metrics
//	GET /healthz           200 when the PBX (ARI or the event socket) is connected and the database answers, else 503
//	GET /status            the PBX connection, live calls and each hook's queue (kanca status)
//	GET /calls/{uuid}      the stored call_hangup of an ended call
//	GET /deliveries        ?hook=&state=&call=&limit=, newest first
//	GET /deliveries/{id}   one delivery with its body and attempts
func Handler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	reg := prometheus.NewRegistry()
	v := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanca_build_info",
		Help:        "Always 1; the labels say which kanca runs.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "goversion": v.Go}})
	build.Set(1)
	reg.MustRegister(build, newCollector(cfg), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Attempts != nil {
		reg.MustRegister(cfg.Attempts.latency)
	}
	h := &handler{cfg: cfg, log: cfg.Logger.With("component", "httpapi")}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", h.health)
	mux.HandleFunc("GET /status", h.status)
	mux.HandleFunc("GET /calls/{uuid}", h.call)
	mux.HandleFunc("GET /deliveries", h.deliveries)
	mux.HandleFunc("GET /deliveries/{id}", h.delivery)
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: try /metrics, /healthz, /status, /calls/{uuid}, /deliveries")
	})
	return mux
}

type handler struct {
	cfg Config
	log *slog.Logger
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	if h.cfg.ARI != nil {
		if st := h.cfg.ARI.Stats(); !st.Connected {
			reason := "ARI: not connected to Asterisk"
			if st.LastError != "" {
				reason += ": " + st.LastError
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
			return
		}
	}
	if h.cfg.ESL != nil {
		if st := h.cfg.ESL.Stats(); !st.Connected {
			reason := "event socket: not connected to FreeSWITCH"
			if st.LastError != "" {
				reason += ": " + st.LastError
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), dbTimeout)
	defer cancel()
	if err := h.cfg.Store.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "database: " + err.Error()})
		return
	}
	// Healthy, but an admin looking here should learn that the calls go
	// nowhere.
	body := map[string]any{"status": "ok"}
	if n, err := h.cfg.Store.EnabledHooks(ctx); err == nil && n == 0 && !h.cfg.Cluster {
		body["warnings"] = []string{status.NoEnabledHook}
	}
	writeJSON(w, http.StatusOK, body)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), dbTimeout)
	defer cancel()
	rep, err := status.FromStore(ctx, h.cfg.Store)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	rep.From, rep.Holder = "daemon", ""
	if h.cfg.Cluster {
		// The local database holds no hooks on a listener: that is no
		// sign the calls go nowhere.
		rep.Warnings = slices.DeleteFunc(rep.Warnings, func(w string) bool { return w == status.NoEnabledHook })
		rep.Warnings = append(rep.Warnings, status.InCluster)
	}
	pbx := func(kind string, connected bool, since time.Time, reconnects uint64, lastErr string) *status.PBX {
		p := &status.PBX{Kind: kind, Connected: connected, Reconnects: reconnects, LastError: lastErr}
		if !since.IsZero() {
			p.Since = &since
		}
		return p
	}
	if h.cfg.ARI != nil {
		st := h.cfg.ARI.Stats()
		rep.PBX = pbx("asterisk", st.Connected, cmp.Or(st.Since, st.Down), st.Reconnects+st.Failures, st.LastError)
	}
	if h.cfg.ESL != nil {
		st := h.cfg.ESL.Stats()
		rep.PBX = pbx("freeswitch", st.Connected, cmp.Or(st.Since, st.Down), st.Reconnects+st.Failures, st.LastError)
	}
	if h.cfg.Pipeline != nil {
		n := h.cfg.Pipeline.Stats().LiveCalls
		rep.LiveCalls = &n
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *handler) call(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), dbTimeout)
	defer cancel()
	body, err := h.cfg.Store.Call(ctx, r.PathValue("uuid"))
	if errors.Is(err, hooks.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no record of call "+strconv.Quote(r.PathValue("uuid")))
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (h *handler) deliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f hooks.Filter
	if v := q.Get("hook"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			writeError(w, http.StatusBadRequest, "hook="+strconv.Quote(v)+": want a hook id")
			return
		}
		f.HookID = id
	}
	if v := q.Get("state"); v != "" {
		st, err := hooks.ParseState(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "state: "+err.Error())
			return
		}
		f.State = st
	}
	f.CallID = q.Get("call")
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit="+strconv.Quote(v)+": want 1 to "+strconv.Itoa(MaxListLimit))
			return
		}
		f.Limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), dbTimeout)
	defer cancel()
	ds, err := h.cfg.Store.Deliveries(ctx, f)
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if ds == nil {
		ds = []hooks.Delivery{}
	}
	writeJSON(w, http.StatusOK, ds)
}

func (h *handler) delivery(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), dbTimeout)
	defer cancel()
	d, atts, err := h.cfg.Store.Delivery(ctx, r.PathValue("id"))
	if errors.Is(err, hooks.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no delivery "+strconv.Quote(r.PathValue("id")))
		return
	}
	if err != nil {
		h.internal(w, r, err)
		return
	}
	if atts == nil {
		atts = []hooks.Attempt{}
	}
	// The same shape as `kanca deliveries show --json`. A delivery holds
	// no credential: the hook's user, password and secret live in the hook.
	writeJSON(w, http.StatusOK, struct {
		hooks.Delivery
		Body     string          `json:"body"`
		Attempts []hooks.Attempt `json:"attempt_log"`
	}{d, string(d.Body), atts})
}

func (h *handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("request failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; see kanca's log")
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
