// Package callapi is the HTTP side of calls on request, served by
// `kanca run --listen`: the Alertalk-compatible webhook, Bulutfon's
// automatic calls and click-to-call, Prometheus Alertmanager's webhook,
// kanca's own JSON API, and the rendered speech the PBX fetches.
//
// Every endpoint but /speech needs an API key (`kanca keys add`), sent as
// X-Webhook-Key (Alertalk), Authorization: Bearer (Alertmanager) or
// ?apikey= (Bulutfon). Errors are JSON naming the field:
// {"status":"error","message":"...","field":"phone_number"}. A request is
// answered 200 only once its calls are stored; bad input never places a
// call.
package callapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/speech"
)

// Config is what the handlers use.
type Config struct {
	Store   *autodial.Store
	Numbers autodial.Numbers
	// Wake tells the runner a request was stored; nil: it finds it at
	// its next poll.
	Wake func()
	// Callback makes the events of calls with a callback_url go there
	// too (hooks.Store.CallbackHook); nil refuses callback_url.
	Callback func(ctx context.Context, url string) error
	// SpeechDir is where rendered speech is cached (speech.Renderer's
	// directory); "" serves no /speech.
	Speech   *speech.Renderer
	Location *time.Location // the budget's day and calling windows (--tz)
	Logger   *slog.Logger
	Now      func() time.Time
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// Register adds the endpoints to mux.
func Register(mux *http.ServeMux, cfg Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &handler{cfg: cfg, rate: map[string][]time.Time{}}
	mux.HandleFunc("POST /webhook/receive", h.keyed(h.alertalk))
	mux.HandleFunc("POST /automatic-calls", h.keyed(h.automatic))
	mux.HandleFunc("GET /automatic-calls", h.keyed(h.listRequests))
	mux.HandleFunc("GET /automatic-calls/{id}", h.keyed(h.showRequest))
	mux.HandleFunc("POST /call_and_bridge", h.keyed(h.bridge))
	mux.HandleFunc("POST /alertmanager", h.keyed(h.alertmanager))
	mux.HandleFunc("POST /call-requests", h.keyed(h.own))
	mux.HandleFunc("GET /call-requests", h.keyed(h.listRequests))
	mux.HandleFunc("GET /call-requests/{id}", h.keyed(h.showRequest))
	mux.HandleFunc("GET /speech/{file}", h.speech)
}

type handler struct {
	cfg  Config
	mu   sync.Mutex
	rate map[string][]time.Time // key name -> request times in the last minute
}

type apiError struct {
	status     int
	msg, field string
}

func (e *apiError) Error() string { return e.msg }

func bad(field, format string, a ...any) error {
	return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, a...)}
}

// keyed checks the API key and the key's rate, then runs f.
func (h *handler) keyed(f func(w http.ResponseWriter, r *http.Request, k autodial.Key) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		secret, from := r.Header.Get("X-Webhook-Key"), "X-Webhook-Key"
		if secret == "" {
			// RFC 9110: the scheme is case-insensitive.
			if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
				secret, from = strings.TrimSpace(token), "Authorization"
			}
		}
		if secret == "" {
			secret, from = r.URL.Query().Get("apikey"), "apikey"
		}
		if secret == "" {
			h.fail(w, r, &apiError{status: http.StatusForbidden, field: "X-Webhook-Key",
				msg: "API key missing: send it as X-Webhook-Key, Authorization: Bearer KEY or ?apikey=KEY"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		k, err := h.cfg.Store.KeyBySecret(ctx, secret)
		if errors.Is(err, autodial.ErrNotFound) {
			h.fail(w, r, &apiError{status: http.StatusForbidden, field: from, msg: "API key invalid"})
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			if wait := h.allow(k); wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
				h.fail(w, r, &apiError{status: http.StatusTooManyRequests, field: "apikey",
					msg: fmt.Sprintf("more than %d requests a minute with this key; try again in %s", k.RatePerMinute, wait.Round(time.Second))})
				return
			}
		}
		if err := f(w, r.WithContext(ctx), k); err != nil {
			h.fail(w, r, err)
		}
	}
}

// allow counts a request against the key's rate per minute, or says how
// long until the key may ask again.
func (h *handler) allow(k autodial.Key) time.Duration {
	if k.RatePerMinute <= 0 {
		return 0
	}
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.rate[k.Name]
	keep := ts[:0]
	for _, t := range ts {
		if now.Sub(t) < time.Minute {
			keep = append(keep, t)
		}
	}
	if len(keep) >= k.RatePerMinute {
		h.rate[k.Name] = keep
		return max(time.Minute-now.Sub(keep[0]), time.Second)
	}
	h.rate[k.Name] = append(keep, now)
	return 0
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var fe *autodial.FieldError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiError{status: http.StatusBadRequest, field: fe.Field, msg: fe.Error()}
	case errors.Is(err, autodial.ErrBudget):
		ae = &apiError{status: http.StatusPaymentRequired, field: "apikey",
			msg: fmt.Sprintf("%s; the key's budget starts again at midnight (%s)", err, h.cfg.Location)}
	case errors.Is(err, autodial.ErrNotFound):
		ae = &apiError{status: http.StatusNotFound, msg: "no such request"}
	default:
		h.cfg.Logger.Error("call request failed", "path", r.URL.Path, "err", err)
		ae = &apiError{status: http.StatusInternalServerError, msg: "internal error; see kanca's log"}
	}
	body := map[string]string{"status": "error", "message": ae.msg}
	if ae.field != "" {
		body["field"] = ae.field
	}
	writeJSON(w, ae.status, body)
}

// take normalises req against the key and stores it.
func (h *handler) take(w http.ResponseWriter, r *http.Request, k autodial.Key, kind string, req autodial.Request) error {
	if err := req.Normalize(k, h.cfg.Numbers.Premium); err != nil {
		var fe *autodial.FieldError
		if errors.As(err, &fe) {
			// Named as the endpoint's own request names it.
			if name, ok := fieldNames[kind][fe.Field]; ok {
				return bad(name, "%s: %s", name, fe.Msg)
			}
		}
		return err
	}
	if req.CallbackURL != nil {
		if h.cfg.Callback == nil {
			return bad("callback_url", "this kanca does not deliver to callback URLs")
		}
		if err := h.cfg.Callback(r.Context(), *req.CallbackURL); err != nil {
			return fmt.Errorf("callback_url: %w", err)
		}
	}
	now := h.cfg.Now()
	t, err := h.cfg.Store.Enqueue(r.Context(), k, kind, r.RemoteAddr, req, now, now.In(h.cfg.Location).Format(time.DateOnly))
	if err != nil {
		return err
	}
	if h.cfg.Wake != nil {
		h.cfg.Wake()
	}
	h.cfg.Logger.Info("calls requested", "key", k.Name, "kind", kind, "request", t.ID, "calls", t.Calls, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"message": fmt.Sprintf("%d call(s) queued", t.Calls), "status": "success", "id": t.ID})
	return nil
}

// numbers parses a comma-separated list of numbers for field.
func (h *handler) numbers(field, s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, bad(field, "%s is missing", field)
	}
	ns, err := h.cfg.Numbers.ParseList(s)
	if err != nil {
		return nil, bad(field, "%s", err)
	}
	return ns, nil
}

// alertalk is Alertalk's webhook: {"phone_number": "5XXXXXXXXX[,...]",
// "error_message": "..."}, one call per number reading the message.
func (h *handler) alertalk(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	var in struct {
		PhoneNumber  *string `json:"phone_number"`
		ErrorMessage *string `json:"error_message"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if in.PhoneNumber == nil {
		return bad("phone_number", "phone_number is missing")
	}
	if in.ErrorMessage == nil || strings.TrimSpace(*in.ErrorMessage) == "" {
		return bad("error_message", "error_message is missing")
	}
	if n := len([]rune(*in.ErrorMessage)); n > speech.MaxText {
		return bad("error_message", "error_message has %d characters, at most %d", n, speech.MaxText)
	}
	ns, err := h.numbers("phone_number", *in.PhoneNumber)
	if err != nil {
		return err
	}
	return h.take(w, r, k, "alertalk", autodial.Request{Numbers: ns, Text: *in.ErrorMessage})
}

// own is kanca's JSON API: autodial.Request with numbers as written.
func (h *handler) own(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	var in struct {
		autodial.Request
		Numbers json.RawMessage `json:"numbers"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	var list []string
	if len(in.Numbers) == 0 {
		return bad("numbers", "numbers is missing")
	}
	if err := json.Unmarshal(in.Numbers, &list); err != nil {
		var one string
		if json.Unmarshal(in.Numbers, &one) != nil {
			return bad("numbers", "want a list of numbers or a comma-separated string")
		}
		list = []string{one}
	}
	ns, err := h.numbers("numbers", strings.Join(list, ","))
	if err != nil {
		return err
	}
	req := in.Request
	req.Numbers = ns
	if req.CallbackURL != nil {
		if err := checkURL(*req.CallbackURL); err != nil {
			return bad("callback_url", "%s", err)
		}
	}
	return h.take(w, r, k, "api", req)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// decodeJSON reads a JSON object body; a body that is not one is a 400
// naming the field it could, else "body".
func decodeJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return bad("body", "reading the body: %s", err)
	}
	if len(b) > maxBody {
		return bad("body", "body larger than %d bytes", maxBody)
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// The own API embeds autodial.Request: its fields are named
			// as the client wrote them.
			field := strings.TrimPrefix(te.Field, "Request.")
			if field == "window" || strings.HasPrefix(field, "window.") {
				return bad("window", `window: want {"days": [7 of {"active": true, "start": "09:00", "finish": "18:00"}]}, Sunday first`)
			}
			return bad(field, "%s: want a %s", field, jsonType(te.Type.Kind()))
		}
		if errors.As(err, &te) {
			return bad("body", "the body must be a JSON object, not a JSON %s", te.Value)
		}
		return bad("body", "not a JSON object: %s", err)
	}
	return nil
}

// form reads a Bulutfon body, JSON or form-encoded, as strings.
func form(r *http.Request) (map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	out := map[string]string{}
	if ct == "application/json" {
		var m map[string]any
		if err := decodeJSON(r, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				out[k] = v
			case nil:
			case float64:
				out[k] = strconv.FormatFloat(v, 'f', -1, 64)
			default:
				out[k] = fmt.Sprint(v)
			}
		}
		return out, nil
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, bad("body", "not a form: %s", err)
	}
	for k := range r.PostForm {
		out[k] = r.PostForm.Get(k)
	}
	return out, nil
}

func boolField(f map[string]string, name string) (bool, error) {
	v, ok := f[name]
	if !ok || v == "" {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, bad(name, "%s=%q: want true or false", name, v)
}

// automatic is Bulutfon's POST /automatic-calls.
func (h *handler) automatic(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	f, err := form(r)
	if err != nil {
		return err
	}
	ns, err := h.numbers("receivers", f["receivers"])
	if err != nil {
		return err
	}
	req := autodial.Request{Title: f["title"], Numbers: ns}
	if f["did"] == "" {
		return bad("did", "did is missing: the PBX number that calls")
	}
	if req.From, err = h.cfg.Numbers.Parse(f["did"]); err != nil {
		return bad("did", "%s", err)
	}
	switch {
	case f["sound_url"] != "" && f["announcement_id"] != "":
		return bad("sound_url", "give one of announcement_id and sound_url")
	case f["sound_url"] != "":
		if err := checkURL(f["sound_url"]); err != nil {
			return bad("sound_url", "%s", err)
		}
		req.Sound = f["sound_url"]
	case f["announcement_id"] != "":
		// An announcement is a sound the PBX holds, by name.
		if a := f["announcement_id"]; strings.ContainsAny(a, " \\") || strings.HasPrefix(a, "/") || strings.Contains(a, "..") {
			return bad("announcement_id", "%q is not a sound name: want one from the PBX's sounds directory, as Playback takes it (custom/welcome)", a)
		}
		req.Sound = f["announcement_id"]
	default:
		return bad("announcement_id", "give announcement_id or sound_url")
	}
	if v := f["timeout"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > autodial.MaxTimeout {
			return bad("timeout", "timeout=%q: want 0 to %d seconds", v, autodial.MaxTimeout)
		}
		req.Timeout = n
	}
	if req.Gather, err = boolField(f, "gather"); err != nil {
		return err
	}
	hours, err := boolField(f, "hours_active")
	if err != nil {
		return err
	}
	if hours {
		var win autodial.Window
		for i, d := range autodial.DayNames {
			if win.Days[i].Active, err = boolField(f, d+"_active"); err != nil {
				return err
			}
			win.Days[i].Start, win.Days[i].Finish = f[d+"_start"], f[d+"_finish"]
		}
		req.Window = &win
	}
	return h.take(w, r, k, "automatic", req)
}

// bridge is Bulutfon's POST /call_and_bridge: call callee from caller and
// connect the answered call to destination.
func (h *handler) bridge(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	f, err := form(r)
	if err != nil {
		return err
	}
	if f["caller"] == "" {
		return bad("caller", "caller is missing: the PBX number that calls")
	}
	from, err := h.cfg.Numbers.Parse(f["caller"])
	if err != nil {
		return bad("caller", "%s", err)
	}
	if f["callee"] == "" {
		return bad("callee", "callee is missing")
	}
	callee, err := h.cfg.Numbers.Parse(f["callee"])
	if err != nil {
		return bad("callee", "%s", err)
	}
	dest := f["destination"]
	if dest == "" || strings.ContainsAny(dest, " /\\@") {
		return bad("destination", "destination %q: want a menu, group or extension", dest)
	}
	req := autodial.Request{Numbers: []string{callee}, From: from, Destination: dest}
	if v := f["timeout"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > autodial.MaxTimeout {
			return bad("timeout", "timeout=%q: want 0 to %d seconds", v, autodial.MaxTimeout)
		}
		req.Timeout = n
	}
	return h.take(w, r, k, "call_and_bridge", req)
}

// alertmanager takes Prometheus Alertmanager's webhook and calls the
// numbers in ?to= for the firing alerts, reading their summaries; a
// payload of resolved alerts places no call.
func (h *handler) alertmanager(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	var in struct {
		Alerts []struct {
			Status      string            `json:"status"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"alerts"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	ns, err := h.numbers("to", r.URL.Query().Get("to"))
	if err != nil {
		return err
	}
	var texts []string
	for _, a := range in.Alerts {
		if a.Status != "firing" {
			continue
		}
		t := a.Annotations["summary"]
		if t == "" {
			t = a.Labels["alertname"]
		}
		if t != "" {
			texts = append(texts, t)
		}
	}
	if len(texts) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"message": "0 call(s) queued", "status": "success"})
		return nil
	}
	text := strings.Join(texts, ". ")
	if rs := []rune(text); len(rs) > speech.MaxText {
		text = string(rs[:speech.MaxText])
	}
	return h.take(w, r, k, "alertmanager", autodial.Request{Numbers: ns, Text: text, Voice: r.URL.Query().Get("voice")})
}

func (h *handler) listRequests(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	vs, err := h.cfg.Store.Requests(r.Context(), k.Name, 0, 100)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []autodial.RequestView{}
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

func (h *handler) showRequest(w http.ResponseWriter, r *http.Request, k autodial.Key) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return &apiError{status: http.StatusNotFound, msg: "no such request"}
	}
	v, err := h.cfg.Store.Request(r.Context(), k.Name, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// speech serves rendered audio to the PBX: no key, the ids are hashes.
func (h *handler) speech(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".wav")
	if h.cfg.Speech == nil || !ok || !speech.ValidID(id) {
		writeJSON(w, http.StatusNotFound, map[string]string{"status": "error", "message": "no such audio"})
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	http.ServeFile(w, r, h.cfg.Speech.Path(id))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fieldNames renames, for each endpoint, the fields of autodial.Request a
// refusal names to what the endpoint's own request calls them.
var fieldNames = map[string]map[string]string{
	"alertalk":        {"numbers": "phone_number", "text": "error_message"},
	"automatic":       {"numbers": "receivers", "from": "did", "sound": "announcement_id"},
	"call_and_bridge": {"numbers": "callee", "from": "caller"},
	"alertmanager":    {"numbers": "to"},
}

// jsonType names a Go kind as JSON does.
func jsonType(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer, reflect.Interface:
		return "value"
	}
	return "number"
}
