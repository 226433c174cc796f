package hooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/templates"
)

// A hook's request is, by default, a POST of the event in its format. It
// may instead be a GET, whose query string carries the event's fields as
// the form format nests them, or a PUT; and a preset or templates may make
// its URL, body and extra headers. Templates read the event's JSON body,
// so a templated hook's deliveries are stored as JSON and rendered when
// sent: a retry renders them again with the hook's templates of the time.

// Methods a hook may send with.
var Methods = []string{http.MethodPost, http.MethodGet, http.MethodPut}

// RequestTemplates returns the templates h's requests are made with: its
// preset expanded, or its own. A zero Set means none.
func (h Hook) RequestTemplates() (templates.Set, error) {
	if h.Preset == "" {
		return h.Templates, nil
	}
	p, err := templates.LookupPreset(h.Preset, h.Lang, h.Method)
	if err != nil {
		return templates.Set{}, err
	}
	return p.Set, nil
}

// storedFormat is the format h's deliveries are stored in: JSON when
// templates read them, the form a GET sends as its query, else h's format.
func (h Hook) storedFormat() formats.Format {
	// Every preset has templates; not expanding it keeps the outbox quick.
	if h.Preset != "" || !h.Templates.IsZero() {
		return formats.JSON
	}
	if h.Method == http.MethodGet {
		return formats.Form
	}
	return h.Format
}

func (h Hook) location() (*time.Location, error) {
	if h.TZ == "" {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(h.TZ)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", h.TZ, err)
	}
	return loc, nil
}

// compile parses h's templates for its time zone, language and params;
// nil when it has none.
func (h Hook) compile() (*templates.Compiled, error) {
	set, err := h.RequestTemplates()
	if err != nil || set.IsZero() {
		return nil, err
	}
	loc, err := h.location()
	if err != nil {
		return nil, err
	}
	lang := h.Lang
	if lang == "" {
		lang = templates.Langs[0]
	}
	return templates.Compile(set, templates.Env{Location: loc, Lang: lang, Params: h.Params, URL: h.URL})
}

// compiledCache keeps the parsed templates of the hooks sent to, so that
// a send renders without parsing again: parsing a preset costs more than
// rendering it. The key is everything parsing reads, so a changed hook is
// parsed anew; the versions it replaced are few and small.
type compiledCache struct {
	mu sync.Mutex
	m  map[string]*templates.Compiled
}

func (cc *compiledCache) compile(h Hook) (*templates.Compiled, error) {
	if h.Preset == "" && h.Templates.IsZero() {
		return nil, nil
	}
	k := strings.Join(requestKey(h), "\x00")
	cc.mu.Lock()
	c, ok := cc.m[k]
	cc.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := h.compile()
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = map[string]*templates.Compiled{}
	}
	cc.m[k] = c
	cc.mu.Unlock()
	return c, nil
}

// requestKey is what h.compile reads.
func requestKey(h Hook) []string {
	key := []string{h.URL}
	for _, v := range requestColumns(h) {
		key = append(key, v.(string))
	}
	return key
}

// built is a request ready to send. payload is what the signature covers:
// the body, or for a GET the query string that carries the data.
type built struct {
	method, url string
	body        []byte
	header      [][2]string // Content-Type first when there is a body
	payload     []byte
}

// build makes d's request for h, its templates parsed by compile.
func build(h Hook, d Delivery, compile func(Hook) (*templates.Compiled, error)) (built, error) {
	method := h.Method
	if method == "" {
		method = http.MethodPost
	}
	b := built{method: method, url: h.URL}
	c, err := compile(h)
	if err != nil {
		return built{}, err
	}
	// A body stored in neither format is sent as it is, when nothing has
	// to read or convert it.
	stored, storedErr := formats.FormatOf(d.ContentType)
	var out templates.Output
	if c != nil {
		if storedErr != nil {
			return built{}, storedErr
		}
		if stored != formats.JSON {
			return built{}, errors.New("delivery was stored as form data before the hook had templates, which read JSON: retry it once the hook is back as it was, or let it go")
		}
		if out, err = c.Render(d.Body); err != nil {
			return built{}, err
		}
		if c.HasURL() {
			b.url = out.URL
			if err := checkURL(b.url); err != nil {
				return built{}, fmt.Errorf("url template rendered an unusable URL: %w", err)
			}
		}
	}
	// as converts the stored body to format f.
	as := func(f formats.Format) ([]byte, error) {
		if f == stored || storedErr != nil {
			return d.Body, nil
		}
		if f == formats.Form && stored == formats.JSON {
			return formats.FormFromJSON(d.Body)
		}
		return nil, fmt.Errorf("delivery stored as %s cannot be sent as %s", stored, f)
	}
	switch {
	case method == http.MethodGet:
		if c == nil || !c.HasURL() {
			q, err := as(formats.Form)
			if err != nil {
				return built{}, err
			}
			b.url = withQuery(b.url, string(q))
		}
		if u, err := url.Parse(b.url); err == nil {
			b.payload = []byte(u.RawQuery)
		}
	case c != nil && c.HasBody():
		if h.Format == formats.JSON && !json.Valid(out.Body) {
			return built{}, errors.New("body template did not render valid JSON for this event")
		}
		b.body = out.Body
		b.header = append(b.header, [2]string{"Content-Type", formats.ContentType(h.Format)})
	default:
		if b.body, err = as(h.Format); err != nil {
			return built{}, err
		}
		ctype := d.ContentType
		if storedErr == nil && stored != h.Format {
			ctype = formats.ContentType(h.Format)
		}
		b.header = append(b.header, [2]string{"Content-Type", ctype})
	}
	if method != http.MethodGet {
		b.payload = b.body
	}
	b.header = append(b.header, out.Headers...)
	return b, nil
}

// withQuery appends a query to a URL that may have one already.
func withQuery(u, q string) string {
	if q == "" {
		return u
	}
	if strings.Contains(u, "?") {
		return u + "&" + q
	}
	return u + "?" + q
}

// reserved are the headers kanca sets itself; a template cannot replace
// them, so ids, ordering and signatures mean the same on every hook.
var reserved = []string{"Authorization", "User-Agent", "Host", "Content-Length",
	"X-Kanca-Event", "X-Kanca-Delivery", "X-Kanca-Sequence", "X-Kanca-Call",
	"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}

// validateRequest checks h's method, preset, time zone and params, and
// renders its templates against a sample of every event it asked for.
func (h Hook) validateRequest() error {
	if h.Method == "" {
		h.Method = http.MethodPost
	}
	if !slices.Contains(Methods, h.Method) {
		return fmt.Errorf("method %q must be one of %s", h.Method, strings.Join(Methods, ", "))
	}
	if h.Preset != "" && !h.Templates.IsZero() {
		return errors.New("a hook has a preset or its own templates, not both (kanca hooks show --preset NAME prints a preset's templates to start from)")
	}
	if h.Preset == "" && h.Lang != "" && !slices.Contains(templates.Langs, h.Lang) {
		return fmt.Errorf("unknown language %q (valid: %s)", h.Lang, strings.Join(templates.Langs, ", "))
	}
	if _, err := h.location(); err != nil {
		return err
	}
	for name := range h.Templates.Headers {
		for _, r := range reserved {
			if strings.EqualFold(name, r) {
				return fmt.Errorf("header template %s: kanca sets that header itself", name)
			}
		}
	}
	set, err := h.RequestTemplates()
	if err != nil {
		return err
	}
	if h.Preset != "" {
		p, _ := templates.LookupPreset(h.Preset, h.Lang, h.Method)
		for _, name := range p.Params {
			if _, ok := h.Params[name]; !ok {
				return fmt.Errorf("preset %s needs --param %s=VALUE", h.Preset, name)
			}
		}
	}
	if h.Method == http.MethodGet && set.Body != "" {
		return errors.New("a GET hook sends no body: give a URL template instead of a body template")
	}
	c, err := h.compile()
	if err != nil || c == nil {
		return err
	}
	// Rendered as sent, but without a cdr_url: whether a CDR URL is
	// configured is kanca run's business, so a template must read it
	// with index to work both ways.
	for _, name := range h.Events {
		t, err := cdr.ParseEventType(name)
		if err != nil {
			return err
		}
		ev := SampleEvent(t, h.Number, sampleTime)
		body, ctype, event, err := Encoding{Location: time.UTC}.Encode(h, ev)
		if err != nil {
			return err
		}
		if _, err := build(h, Delivery{ID: "sample", Event: event, Body: body, ContentType: ctype}, Hook.compile); err != nil {
			return fmt.Errorf("%w (rendering a sample %s)", err, name)
		}
	}
	return nil
}

// sampleTime makes validation deterministic.
var sampleTime = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
