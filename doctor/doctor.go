// Package doctor checks, in the order kanca needs them, that a kanca
// installation can work: the PBX answers (Asterisk's ARI, or FreeSWITCH's
// event socket), accepts the credentials and the subscription kanca makes
// (and, for Asterisk, hands over each channel's linkedid; for FreeSWITCH,
// lists its channels), the database can be written, and every enabled
// hook's host answers. Each failed check says how to fix it.
package doctor

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/version"
)

// Status is how a check came out.
type Status string

const (
	OK   Status = "OK"
	Fail Status = "FAIL"
	Warn Status = "WARN" // could not tell, or works but is worth fixing; not a failure
	Skip Status = "SKIP" // not run: an earlier check it depends on failed
)

// Result is one check's outcome.
type Result struct {
	Check  string
	Status Status
	Detail string // what was found
	Fix    string // what to do, for Fail and Warn
}

// Config says what to check.
type Config struct {
	// PBX is "asterisk" (the default) or "freeswitch": which of ARI and
	// ESL is checked.
	PBX string
	// ARI is the connection kanca run would make: URL, User, Password, App.
	ARI ari.Config
	// ESL is the event socket connection kanca run --pbx freeswitch would
	// make: Addr, Password.
	ESL esl.Config
	// DB is the database path.
	DB string
	// Timeout bounds each network check (default 5 s).
	Timeout time.Duration
	// Originate also checks what calls on request need (kanca run
	// --dial): a PBX user allowed to place calls.
	Originate bool
}

// LinkedIDVar is the channel variable kanca reads each channel's linkedid from.
const LinkedIDVar = "CHANNEL(linkedid)"

const ariConfLine = "ari.conf [general]: channelvars = CHANNEL(linkedid), then reload: asterisk -rx 'module reload res_ari.so'"

// Run runs every check in order, calls report (if not nil) after each, and
// returns the results.
func Run(ctx context.Context, cfg Config, report func(Result)) []Result {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	var out []Result
	add := func(r Result) {
		out = append(out, r)
		if report != nil {
			report(r)
		}
	}
	if cfg.PBX == "freeswitch" {
		eslChecks(ctx, cfg, add)
	} else {
		ariChecks(ctx, cfg, add)
		if cfg.Originate {
			ariOriginateCheck(ctx, cfg, add)
		}
	}
	dbChecks(ctx, cfg, add)
	return out
}

// Failed counts the failed checks.
func Failed(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

const (
	checkReach     = "ARI reachable"
	checkAuth      = "credentials accepted"
	checkSubscribe = "subscribeAll works"
	checkLinkedID  = "linkedid reaches kanca"
	checkDB        = "database writable"
)

// DoctorApp is the ARI application name kanca doctor subscribes as when
// kanca run subscribes as app.
func DoctorApp(app string) string { return app + "-doctor" }

// client talks to ARI the way kanca's source does.
type client struct {
	rest, events string // .../ari and .../ari/events?app=...&subscribeAll=true
	auth         string
	user         string
	http         *http.Client
	timeout      time.Duration
}

func newClient(cfg Config) (*client, error) {
	// ari.New checks the configuration exactly as kanca run does.
	if _, err := ari.New(cfg.ARI); err != nil {
		return nil, err
	}
	a := cfg.ARI
	if a.URL == "" {
		a.URL = "http://127.0.0.1:8088"
	}
	if a.App == "" {
		a.App = "kanca"
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return nil, errors.New("ari: URL does not parse")
	}
	rest, ws := *u, *u
	if u.Scheme == "https" || u.Scheme == "wss" {
		rest.Scheme, ws.Scheme = "https", "wss"
	} else {
		rest.Scheme, ws.Scheme = "http", "ws"
	}
	base := strings.TrimSuffix(u.Path, "/") + "/ari"
	rest.Path, ws.Path = base, base+"/events"
	// Its own application name: Asterisk gives an application's events
	// to the newest WebSocket subscribed as it, so subscribing as kanca
	// run's would take them from a running kanca (ApplicationReplaced).
	ws.RawQuery = url.Values{"app": {DoctorApp(a.App)}, "subscribeAll": {"true"}}.Encode()
	return &client{
		rest:    rest.String(),
		events:  ws.String(),
		auth:    "Basic " + base64.StdEncoding.EncodeToString([]byte(a.User+":"+a.Password)),
		user:    a.User,
		http:    &http.Client{Timeout: cfg.Timeout},
		timeout: cfg.Timeout,
	}, nil
}

// get returns the answer's status and (bounded) body, or a transport error.
func (c *client) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.rest+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", c.auth)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// message is Asterisk's explanation in an error answer, if any.
func message(status int, body []byte) string {
	var m struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(body, &m)
	if msg := m.Message + m.Error; msg != "" {
		return fmt.Sprintf("HTTP %d: %s", status, msg)
	}
	return fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
}

func ariChecks(ctx context.Context, cfg Config, add func(Result)) {
	skipRest := func(from int, why string) {
		for _, name := range []string{checkReach, checkAuth, checkSubscribe, checkLinkedID}[from:] {
			add(Result{Check: name, Status: Skip, Detail: why})
		}
	}
	c, err := newClient(cfg)
	if err != nil {
		add(Result{Check: checkReach, Status: Fail, Detail: err.Error(),
			Fix: "set --ari-url (KANCA_ARI_URL) to Asterisk's HTTP server and --ari-user (KANCA_ARI_USER) to an ari.conf user"})
		skipRest(1, "the ARI settings are not usable")
		return
	}

	// 1 and 2: one GET /ari/asterisk/info answers both.
	status, body, err := c.get(ctx, "/asterisk/info")
	if err != nil {
		add(Result{Check: checkReach, Status: Fail, Detail: fmt.Sprintf("GET %s/asterisk/info: %v", c.rest, err),
			Fix: "start Asterisk, enable its HTTP server (http.conf: enabled = yes, bindaddr, bindport) and point --ari-url (KANCA_ARI_URL) at it"})
		skipRest(1, "Asterisk is not reachable")
		return
	}
	switch {
	case status == http.StatusNotFound:
		add(Result{Check: checkReach, Status: Fail, Detail: fmt.Sprintf("%s/asterisk/info: %s: an HTTP server answers, but not ARI", c.rest, message(status, body)),
			Fix: "enable ARI (ari.conf [general]: enabled = yes) and check --ari-url's path matches http.conf's prefix"})
		skipRest(1, "ARI is not served at this URL")
		return
	case status == http.StatusUnauthorized:
		add(Result{Check: checkReach, Status: OK, Detail: "Asterisk answers at " + c.rest})
		add(Result{Check: checkAuth, Status: Fail, Detail: fmt.Sprintf("Asterisk refused user %q (HTTP 401)", c.user),
			Fix: fmt.Sprintf("check ari.conf [%s] and KANCA_ARI_USER/KANCA_ARI_PASSWORD (or --ari-password-file)", c.user)})
		skipRest(2, "the credentials were refused")
		return
	case status < 200 || status > 299:
		add(Result{Check: checkReach, Status: Fail, Detail: fmt.Sprintf("GET %s/asterisk/info: %s", c.rest, message(status, body)),
			Fix: "check Asterisk's log and that --ari-url points at Asterisk's HTTP server"})
		skipRest(1, "ARI did not answer normally")
		return
	}
	var info struct {
		System struct {
			Version  string `json:"version"`
			EntityID string `json:"entity_id"`
		} `json:"system"`
	}
	_ = json.Unmarshal(body, &info)
	add(Result{Check: checkReach, Status: OK, Detail: fmt.Sprintf("Asterisk %s (entity %s) at %s", info.System.Version, info.System.EntityID, c.rest)})
	add(Result{Check: checkAuth, Status: OK, Detail: fmt.Sprintf("user %q accepted", c.user)})

	// 3: the subscription kanca run makes.
	dctx, cancel := context.WithTimeout(ctx, c.timeout)
	conn, resp, err := websocket.Dial(dctx, c.events, &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": {c.auth}},
	})
	cancel()
	if err != nil {
		detail := fmt.Sprintf("%s: %v", c.events, err)
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			detail = fmt.Sprintf("%s: %s", c.events, message(resp.StatusCode, b))
		}
		add(Result{Check: checkSubscribe, Status: Fail, Detail: detail,
			Fix: "kanca needs an ARI that accepts subscribeAll=true and a valid --ari-app name (KANCA_ARI_APP); check Asterisk's log for why it refused"})
	} else {
		conn.Close(websocket.StatusNormalClosure, "kanca doctor done")
		add(Result{Check: checkSubscribe, Status: OK, Detail: "events WebSocket connected with subscribeAll=true"})
	}

	// 4: linkedid in the channel snapshots.
	status, body, err = c.get(ctx, "/channels")
	var chans []struct {
		ID          string            `json:"id"`
		ChannelVars map[string]string `json:"channelvars"`
	}
	switch {
	case err != nil:
		add(Result{Check: checkLinkedID, Status: Fail, Detail: "GET /ari/channels: " + err.Error(), Fix: "check that Asterisk stays reachable"})
		return
	case status < 200 || status > 299:
		add(Result{Check: checkLinkedID, Status: Fail, Detail: "GET /ari/channels: " + message(status, body), Fix: "check Asterisk's log"})
		return
	}
	if err := json.Unmarshal(body, &chans); err != nil {
		add(Result{Check: checkLinkedID, Status: Fail, Detail: "GET /ari/channels: not a channel list: " + err.Error(), Fix: "check that --ari-url points at Asterisk"})
		return
	}
	with := 0
	for _, ch := range chans {
		if _, ok := ch.ChannelVars[LinkedIDVar]; ok {
			with++
		}
	}
	switch {
	case len(chans) == 0:
		add(Result{Check: checkLinkedID, Status: Warn, Detail: "no live channel, so it can't tell; run again during a call",
			Fix: "make sure of " + ariConfLine})
	case with == 0:
		add(Result{Check: checkLinkedID, Status: Fail,
			Detail: fmt.Sprintf("none of %d live channels carries %s (kanca falls back to grouping legs by Dial and bridges)", len(chans), LinkedIDVar),
			Fix:    ariConfLine})
	default:
		add(Result{Check: checkLinkedID, Status: OK, Detail: fmt.Sprintf("%d of %d live channels carry %s", with, len(chans), LinkedIDVar)})
	}
}

func dbChecks(ctx context.Context, cfg Config, add func(Result)) {
	store, err := hooks.OpenExisting(cfg.DB)
	if err != nil {
		fix := "check --db (KANCA_DB), and that kanca's user can write the file and its directory (SQLite keeps -wal and -shm files beside it)"
		if cfg.DB != "" && strings.Contains(err.Error(), "does not exist") {
			fix = "create it: kanca hooks add (or start kanca run), with the same --db (KANCA_DB)"
		}
		add(Result{Check: checkDB, Status: Fail, Detail: err.Error(), Fix: fix})
		add(Result{Check: "hooks answer", Status: Skip, Detail: "no database to read the hooks from"})
		return
	}
	defer store.Close()
	if err := store.CheckWritable(ctx); err != nil {
		add(Result{Check: checkDB, Status: Fail, Detail: err.Error(),
			Fix: "make the file, its -wal and -shm files and its directory writable by kanca's user, and check the disk has room"})
	} else {
		add(Result{Check: checkDB, Status: OK, Detail: cfg.DB + ": written and rolled back"})
	}

	hs, err := store.ListHooks(ctx)
	if err != nil {
		add(Result{Check: "hooks answer", Status: Fail, Detail: err.Error(), Fix: "check the database file"})
		return
	}
	enabled := 0
	for _, h := range hs {
		if !h.Enabled {
			continue
		}
		enabled++
		add(checkHook(ctx, h, cfg.Timeout))
	}
	if enabled == 0 {
		add(Result{Check: "hooks answer", Status: Warn, Detail: "no enabled hook: kanca will deliver nothing",
			Fix: "add one: kanca hooks add --number NUMBER --url URL"})
	}
}

// checkHook sends HEAD to the hook's URL: any HTTP answer, whatever its
// status, shows the host is there.
func checkHook(ctx context.Context, h hooks.Hook, timeout time.Duration) Result {
	u, _ := url.Parse(h.URL) // validated when the hook was stored
	host := u.Host
	if u.Port() == "" {
		host += map[string]string{"http": ":80", "https": ":443"}[u.Scheme]
	}
	name := fmt.Sprintf("hook %d (%s) answers", h.ID, h.Number)
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if h.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as the hook is configured
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, h.URL, nil)
	if err != nil {
		return Result{Check: name, Status: Fail, Detail: err.Error(), Fix: "fix the URL: kanca hooks update " + fmt.Sprint(h.ID) + " --url ..."}
	}
	req.Header.Set("User-Agent", version.UserAgent()+" (doctor)")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry a token in its query: name the host only
		}
		return Result{Check: name, Status: Fail, Detail: fmt.Sprintf("%s: no answer: %v", host, err),
			Fix: fmt.Sprintf("check the hook's URL (kanca hooks list), DNS, and firewalls between kanca and %s", host)}
	}
	resp.Body.Close()
	// The host is there; whether it takes an event only a POST of one says.
	return Result{Check: name, Status: OK, Detail: fmt.Sprintf("%s answered HTTP %d to HEAD; kanca hooks test %d posts a sample event", host, resp.StatusCode, h.ID)}
}
