package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
)

// turkey is the reference PBX's zone, as in the replay goldens.
var turkey = time.FixedZone("+03", 3*3600)

const (
	hookUser     = "kanca"
	hookPassword = "s3cret pass:word"
	// hookSecret is a Standard Webhooks secret: whsec_ + base64 of the key.
	hookSecret = "whsec_c2lnbmluZy1rZXktZm9yLXRoZS1leGFtcGxlcw=="
)

// Delivery is one webhook of the recorded corpus as kanca POSTs it, in both
// formats.
type Delivery struct {
	ID    string // stable: scenario/index
	Type  string
	UUID  string
	JSON  []byte
	Form  []byte
	Body  map[string]any // the JSON, numbers as json.Number
	Event cdr.Event      // what the tracker made of the frames
	Frame int            // the frame that produced it, numbered across the corpus
}

// Corpus replays every recorded Asterisk scenario (testdata/ari) through
// the tracker and encodes each event as JSON and as form data. The JSON
// bodies are exactly the lines of replay/testdata/*.ndjson.
func Corpus(t testing.TB) []Delivery {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "ari", "s*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	opts := formats.Options{Location: turkey}
	var out []Delivery
	frames := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		golden := readLines(t, filepath.Join("..", "replay", "testdata", name+".ndjson"))
		tracker := cdr.NewTracker(cdr.DefaultConfig())
		var evs []cdr.Event
		var frameOf []int
		for _, frame := range readLines(t, filepath.Join(dir, "events.ndjson")) {
			frames++
			in, ok, err := ari.Decode(frame)
			require.NoError(t, err, name)
			if ok {
				for _, ev := range tracker.Handle(in) {
					evs = append(evs, ev)
					frameOf = append(frameOf, frames)
				}
			}
		}
		require.Len(t, evs, len(golden), "%s: events replayed vs golden bodies", name)
		for i, ev := range evs {
			js, ct, err := formats.Encode(formats.JSON, ev, opts)
			require.NoError(t, err)
			require.Equal(t, "application/json", ct)
			require.Equal(t, string(golden[i]), string(js), "%s body %d", name, i)
			form, ct, err := formats.Encode(formats.Form, ev, opts)
			require.NoError(t, err)
			require.Equal(t, "application/x-www-form-urlencoded", ct)
			d := Delivery{ID: fmt.Sprintf("%s/%d", name, i), Type: string(ev.Type), UUID: ev.CallID, JSON: js, Form: form,
				Event: ev, Frame: frameOf[i]}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&d.Body))
			out = append(out, d)
		}
	}
	return out
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, append([]byte(nil), sc.Bytes()...))
		}
	}
	require.NoError(t, sc.Err())
	return lines
}

// ---------------------------------------------------------------- PHP servers

// PHPServer is PHP's built-in web server serving one example directory on
// 127.0.0.1.
type PHPServer struct {
	URL  string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// RequirePHP skips the test when php, or one of the PHP extensions named,
// is missing; with CI set in the environment it fails instead.
func RequirePHP(t testing.TB, extensions ...string) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed by the PHP examples' tests", what)
		}
		t.Skipf("%s is not installed, so the PHP examples are not tested (CI installs it)", what)
	}
	php, err := exec.LookPath("php")
	if err != nil {
		missing("php")
	}
	if len(extensions) == 0 {
		return php
	}
	out, err := exec.Command(php, "-m").Output()
	require.NoError(t, err)
	have := map[string]bool{}
	for _, m := range strings.Fields(strings.ToLower(string(out))) {
		have[m] = true
	}
	for _, ext := range extensions {
		if !have[strings.ToLower(ext)] {
			missing("the PHP extension " + ext)
		}
	}
	return php
}

// StartPHP serves dir with `php -S` on a free loopback port, with env
// (NAME=value) added to a clean environment, and stops it when the test
// ends. It skips (or under CI fails) like RequirePHP.
func StartPHP(t testing.TB, dir string, env []string, extensions ...string) *PHPServer {
	t.Helper()
	php := RequirePHP(t, extensions...)
	dir, err := filepath.Abs(dir)
	require.NoError(t, err)
	var base []string
	for _, kv := range os.Environ() {
		// The examples' own settings come from env only.
		if !strings.HasPrefix(kv, "KANCA_") && !strings.HasPrefix(kv, "HIPCHAT_") &&
			!strings.HasPrefix(kv, "SLACK_") && !strings.HasPrefix(kv, "PHP_CLI_SERVER") {
			base = append(base, kv)
		}
	}
	// A free port can be taken between finding and binding it: try again.
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeAddr(t)
		s := &PHPServer{URL: "http://" + addr, done: make(chan struct{}), log: &lockedBuffer{}}
		s.cmd = exec.Command(php, "-S", addr, "-q", "-t", dir) // -q: no access log
		s.cmd.Env = append(append([]string(nil), base...), env...)
		s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
		require.NoError(t, s.cmd.Start())
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		if s.waitReady(addr) {
			t.Cleanup(func() {
				_ = s.cmd.Process.Kill()
				<-s.done
				if t.Failed() {
					t.Logf("php -S %s log:\n%s", filepath.Base(dir), s.log.String())
				}
			})
			return s
		}
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Logf("php -S on %s did not come up:\n%s", addr, s.log.String())
	}
	t.Fatal("php -S did not start")
	return nil
}

// waitReady waits (boundedly) until the server accepts connections; false
// when it exited first or never listened.
func (s *PHPServer) waitReady(addr string) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// Webhook is one request to a receiver.
type Webhook struct {
	Path           string // "/hook.php"
	Method         string // default POST
	Body           []byte
	ContentType    string
	User, Password string    // Basic credentials when User is set
	Delivery       string    // X-Kanca-Delivery and webhook-id
	Secret         string    // signs the body when set
	SignedAt       time.Time // zero: now
	Signature      string    // sent instead of the computed signature when set
}

var client = &http.Client{Timeout: 30 * time.Second}

// Send makes the request and returns the status and body of the answer.
func (s *PHPServer) Send(t testing.TB, w Webhook) (int, string) {
	t.Helper()
	method := w.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, s.URL+w.Path, bytes.NewReader(w.Body))
	require.NoError(t, err)
	if w.ContentType != "" {
		req.Header.Set("Content-Type", w.ContentType)
	}
	if w.User != "" {
		req.SetBasicAuth(w.User, w.Password)
	}
	if w.Delivery != "" {
		req.Header.Set("X-Kanca-Delivery", w.Delivery)
	}
	if w.Secret != "" || w.Signature != "" {
		at := w.SignedAt
		if at.IsZero() {
			at = time.Now()
		}
		sig := w.Signature
		if sig == "" {
			sig = Sign(t, w.Secret, w.Delivery, at, w.Body)
		}
		req.Header.Set("webhook-id", w.Delivery)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// Sign is the Standard Webhooks signature kanca sends.
func Sign(t testing.TB, secret, id string, at time.Time, body []byte) string {
	t.Helper()
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		var err error
		key, err = base64.StdEncoding.DecodeString(rest)
		require.NoError(t, err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, at.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ------------------------------------------------------------------- values

// str is a field as the receivers store and show it: numbers as digits,
// null as "".
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "1"
		}
		return "0"
	}
	panic(fmt.Sprintf("not a scalar: %#v", v))
}

func opt(v any) any {
	if s := str(v); s != "" {
		return s
	}
	return nil
}

func cdrOf(d Delivery) map[string]any {
	c, _ := d.Body["cdr"].(map[string]any)
	return c
}

// ---------------------------------------------------------------------- CRM

func startCRM(t testing.TB) (*PHPServer, string) {
	db := filepath.Join(t.TempDir(), "crm.sqlite")
	s := StartPHP(t, filepath.Join("php", "crm"), []string{
		"KANCA_CRM_DB=" + db,
		"KANCA_HOOK_USER=" + hookUser,
		"KANCA_HOOK_PASSWORD=" + hookPassword,
		"KANCA_HOOK_SECRET=" + hookSecret,
	}, "pdo_sqlite")
	return s, db
}

func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// rows reads a query's rows as maps of column to text (NULL as nil).
func rows(t testing.TB, db *sql.DB, query string) []map[string]any {
	t.Helper()
	r, err := db.Query(query)
	require.NoError(t, err)
	defer r.Close()
	cols, err := r.Columns()
	require.NoError(t, err)
	var out []map[string]any
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, r.Scan(ptrs...))
		m := map[string]any{}
		for i, c := range cols {
			if vals[i].Valid {
				m[c] = vals[i].String
			} else {
				m[c] = nil
			}
		}
		out = append(out, m)
	}
	require.NoError(t, r.Err())
	return out
}

// recordedCalls is what each recorded call was, from the scenario notes
// (testdata/ari/*/notes.txt) and Asterisk's own CDRs beside them, in the
// CRM's terms, by caller.
var recordedCalls = map[string]struct{ direction, callee, outcome, callType, cause string }{
	"905321234567": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},  // s01
	"905321234568": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},  // s02
	"905321234569": {"IN", "908508850000", "missed", "voice", "NO_ANSWER"},          // s03: rang out
	"905321234570": {"IN", "908508850000", "missed", "voice", "ORIGINATOR_CANCEL"},  // s04: caller gave up
	"905321234571": {"IN", "908508850000", "missed", "voice", "USER_BUSY"},          // s05
	"905321234572": {"IN", "908508850001", "answered", "voice", "NORMAL_CLEARING"},  // s06: IVR, then 1000
	"905321234573": {"IN", "908508850002", "answered", "voice", "NORMAL_CLEARING"},  // s07: queue
	"908508850000": {"OUT", "905321112233", "answered", "voice", "NORMAL_CLEARING"}, // s08
	"902121234567": {"IN", "908508850009", "answered", "fax", "NORMAL_CLEARING"},    // s09: answered by ReceiveFAX
	"905329000001": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},  // s11, five at once
	"905329000002": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},
	"905329000003": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},
	"905329000004": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},
	"905329000005": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"},
	"905321234576": {"IN", "908508850003", "answered", "voice", "NORMAL_CLEARING"}, // s12: ring group
	"905321234578": {"IN", "908508850000", "answered", "voice", "NORMAL_CLEARING"}, // s14
}

// TestCRMStoresWhatKancaDelivers has kanca deliver the recorded calls to
// two CRMs: JSON to hook.php and form data to the site's root, each hook
// with Basic credentials and a signing secret. It checks what the CRMs
// stored against the bodies kanca sent and the calls against what they
// were; then that a redelivery kanca makes is stored once.
func TestCRMStoresWhatKancaDelivers(t *testing.T) {
	corpus := Corpus(t)
	jsonCRM, jsonDB := startCRM(t)
	formCRM, formDB := startCRM(t)
	k := NewKanca(t, corpus,
		Receiver{URL: jsonCRM.URL + "/hook.php", Format: formats.JSON, Secret: hookSecret},
		Receiver{URL: formCRM.URL + "/", Format: formats.Form, Secret: hookSecret})
	k.Deliver(t)
	sentJSON, sentForm := k.Delivered(t, 0), k.Delivered(t, 1)
	for _, sent := range []map[string]Delivery{sentJSON, sentForm} {
		for id := range sent {
			atts := k.Attempts(t, id)
			require.Len(t, atts, 1)
			assert.Equal(t, http.StatusOK, atts[0].Status, id)
			assert.JSONEq(t, fmt.Sprintf(`{"delivery":%q,"duplicate":false}`, id), atts[0].Response, "the CRM's answer")
		}
	}

	// What each call should look like, from its bodies.
	type want struct {
		direction, caller, callee, callType string
		started                             int64
		hangup                              *Delivery
		missed                              bool
		routes                              []map[string]any
		events                              int
	}
	calls := map[string]*want{}
	for i := range corpus {
		d := &corpus[i]
		w := calls[d.UUID]
		if w == nil {
			w = &want{callType: "voice", routes: []map[string]any{}}
			calls[d.UUID] = w
		}
		w.events++
		ts, err := d.Body["timestamp"].(json.Number).Int64()
		require.NoError(t, err)
		if w.started == 0 || ts < w.started {
			w.started = ts
		}
		if d.Type == "call_init" || w.caller == "" {
			w.direction, w.caller, w.callee = str(d.Body["direction"]), str(d.Body["caller"]), str(d.Body["callee"])
		}
		switch d.Type {
		case "fax_init":
			w.callType = "fax"
		case "call_init_extension", "call_init_group", "call_init_menu":
			w.routes = append(w.routes, map[string]any{"event": d.Type, "destination": str(d.Body["destination"])})
		case "missing_call":
			w.missed = true
			w.hangup = d
		case "call_hangup":
			w.hangup = d
		}
	}
	require.Len(t, calls, len(recordedCalls), "the corpus's calls")

	db := openDB(t, jsonDB)
	events := rows(t, db, `SELECT delivery_id, call_uuid, event_type, timestamp_us, destination, content_type, body FROM events ORDER BY delivery_id`)
	require.Len(t, events, len(corpus))
	for _, e := range events {
		d, ok := sentJSON[e["delivery_id"].(string)]
		require.True(t, ok, "stored a delivery kanca did not send: %v", e["delivery_id"])
		assert.Equal(t, d.UUID, e["call_uuid"])
		assert.Equal(t, d.Type, e["event_type"])
		assert.Equal(t, str(d.Body["timestamp"]), e["timestamp_us"])
		assert.Equal(t, opt(d.Body["destination"]), e["destination"])
		assert.Equal(t, "application/json", e["content_type"])
		assert.Equal(t, string(d.JSON), e["body"], "%s: kanca sent the replayed body, the CRM kept it as received", d.ID)
	}

	stored := rows(t, db, `SELECT * FROM calls ORDER BY uuid`)
	require.Len(t, stored, len(calls))
	missed := 0
	for _, c := range stored {
		uuid := c["uuid"].(string)
		w := calls[uuid]
		require.NotNil(t, w, "stored an unknown call %s", uuid)
		assert.Equal(t, w.direction, c["direction"], uuid)
		assert.Equal(t, w.caller, c["caller"], uuid)
		assert.Equal(t, w.callee, c["callee"], uuid)
		assert.Equal(t, strconv.FormatInt(w.started, 10), c["started_us"], uuid)
		assert.Equal(t, map[bool]string{true: "1", false: "0"}[w.missed], c["missed"], uuid)
		if w.missed {
			missed++
		}
		var routes []map[string]any
		require.NoError(t, json.Unmarshal([]byte(c["routes"].(string)), &routes))
		assert.Equal(t, w.routes, routes, uuid)
		require.NotNil(t, w.hangup, "every recorded call ends: %s", uuid)
		h := w.hangup.Body
		rec := cdrOf(*w.hangup)
		assert.Equal(t, str(rec["bf_calltype"]), c["call_type"], uuid)
		if w.callType == "fax" {
			assert.Equal(t, "fax", c["call_type"], uuid)
		}
		assert.Equal(t, opt(rec["call_time"]), c["call_time"], uuid)
		assert.Equal(t, opt(rec["answer_time"]), c["answer_time"], uuid)
		assert.Equal(t, opt(rec["hangup_time"]), c["hangup_time"], uuid)
		assert.Equal(t, opt(h["hangup_cause"]), c["hangup_cause"], uuid)
		assert.Equal(t, opt(rec["sip_hangup_disposition"]), c["disposition"], uuid)
		assert.Equal(t, str(h["result_disposition"]), c["result_disposition"], uuid)
		assert.Equal(t, str(h["talk_duration"]), c["talk_duration"], uuid)
		// The callflow, with every value as text.
		var flow []map[string]any
		for _, step := range rec["callflow"].([]any) {
			s := map[string]any{}
			for k, v := range step.(map[string]any) {
				s[k] = opt(v)
			}
			s["callee"], s["redirection"] = str(s["callee"]), str(s["redirection"])
			flow = append(flow, s)
		}
		var got []map[string]any
		require.NoError(t, json.Unmarshal([]byte(c["callflow"].(string)), &got))
		assert.Equal(t, flow, got, uuid)

		// And what the call was, whatever the bodies said.
		rc, ok := recordedCalls[c["caller"].(string)]
		if assert.True(t, ok, "a call from %v is not in the recordings", c["caller"]) {
			assert.Equal(t, rc.direction, c["direction"], uuid)
			assert.Equal(t, rc.callee, c["callee"], uuid)
			assert.Equal(t, rc.outcome == "missed", c["missed"] == "1", uuid)
			assert.Equal(t, rc.callType, c["call_type"], uuid)
			assert.Equal(t, rc.cause, c["hangup_cause"], uuid)
			assert.Equal(t, rc.outcome == "answered", c["answer_time"] != nil, uuid)
		}
	}
	assert.Equal(t, 3, missed, "s03, s04 and s05 are missed calls")

	// The form CRM stored the very same, but for how the bodies came and
	// under the delivery ids of its own hooks.
	fdb := openDB(t, formDB)
	const sameEvents = `SELECT call_uuid, event_type, timestamp_us, destination FROM events ORDER BY call_uuid, timestamp_us, event_type`
	assert.Equal(t, rows(t, db, sameEvents), rows(t, fdb, sameEvents))
	assert.Equal(t,
		rows(t, db, `SELECT * FROM calls ORDER BY uuid`),
		dropColumn(rows(t, fdb, `SELECT * FROM calls ORDER BY uuid`), "updated_at", rows(t, db, `SELECT uuid, updated_at FROM calls ORDER BY uuid`)))
	formEvents := rows(t, fdb, `SELECT delivery_id, content_type, body FROM events`)
	require.Len(t, formEvents, len(corpus))
	for _, e := range formEvents {
		d, ok := sentForm[e["delivery_id"].(string)]
		require.True(t, ok, "stored a delivery kanca did not send: %v", e["delivery_id"])
		assert.Equal(t, "application/x-www-form-urlencoded", e["content_type"])
		assert.Equal(t, string(d.Form), e["body"], d.ID)
	}

	// The page lists every call with its outcome, the missed ones marked.
	status, page := jsonCRM.Send(t, Webhook{Method: http.MethodGet, Path: "/", User: hookUser, Password: hookPassword})
	require.Equal(t, http.StatusOK, status, page)
	outcomes := map[string]string{}
	for _, m := range regexp.MustCompile(`<tr class="([^"]*)" id="call-([^"]+)">`).FindAllStringSubmatch(page, -1) {
		outcomes[m[2]] = m[1]
	}
	wantOutcomes := map[string]string{}
	for uuid, w := range calls {
		wantOutcomes[uuid] = recordedCalls[w.caller].outcome
		assert.Contains(t, page, ">"+w.caller+"<")
		assert.Contains(t, page, ">"+w.callee+"<")
	}
	assert.Equal(t, wantOutcomes, outcomes, "each call's row and outcome on the page")
	status, _ = jsonCRM.Send(t, Webhook{Method: http.MethodGet, Path: "/"})
	assert.Equal(t, http.StatusUnauthorized, status, "the page needs the credentials too")
	status, list := formCRM.Send(t, Webhook{Method: http.MethodGet, Path: "/?format=json", User: hookUser, Password: hookPassword})
	require.Equal(t, http.StatusOK, status, list)
	var listed struct {
		Calls []struct {
			UUID   string `json:"uuid"`
			Missed bool   `json:"missed"`
			Events int    `json:"events"`
		} `json:"calls"`
	}
	require.NoError(t, json.Unmarshal([]byte(list), &listed))
	require.Len(t, listed.Calls, len(calls))
	for _, c := range listed.Calls {
		assert.Equal(t, calls[c.UUID].missed, c.Missed, c.UUID)
		assert.Equal(t, calls[c.UUID].events, c.Events, c.UUID)
	}

	// `kanca deliveries retry` sends delivered deliveries again, with the
	// same ids and fresh signatures: each CRM answers that it had them, and
	// stores nothing twice.
	var again []string
	for _, sent := range []map[string]Delivery{sentJSON, sentForm} {
		for id, d := range sent {
			if d.Type == "call_hangup" {
				again = append(again, id)
				require.NoError(t, k.Store.Retry(context.Background(), id))
			}
		}
	}
	require.Len(t, again, 2*len(calls))
	k.Settle(t)
	for _, id := range again {
		atts := k.Attempts(t, id)
		require.Len(t, atts, 2, id)
		assert.Equal(t, http.StatusOK, atts[1].Status, id)
		assert.JSONEq(t, fmt.Sprintf(`{"delivery":%q,"duplicate":true}`, id), atts[1].Response)
	}
	assert.Len(t, rows(t, db, `SELECT delivery_id FROM events`), len(corpus))
	assert.Len(t, rows(t, fdb, `SELECT delivery_id FROM events`), len(corpus))
}

// dropColumn replaces col in got with the value the reference rows have
// (matched by uuid), for a column that legitimately differs.
func dropColumn(got []map[string]any, col string, ref []map[string]any) []map[string]any {
	vals := map[any]any{}
	for _, r := range ref {
		vals[r["uuid"]] = r[col]
	}
	for _, r := range got {
		r[col] = vals[r["uuid"]]
	}
	return got
}

// TestCRMRejects checks that the CRM stores nothing it should not trust,
// and a redelivery only once.
func TestCRMRejects(t *testing.T) {
	corpus := Corpus(t)
	var d Delivery
	for _, c := range corpus {
		if c.Type == "call_hangup" {
			d = c
			break
		}
	}
	require.NotEmpty(t, d.ID)
	crm, dbPath := startCRM(t)
	good := Webhook{Path: "/hook.php", Body: d.JSON, ContentType: "application/json",
		User: hookUser, Password: hookPassword, Delivery: d.ID, Secret: hookSecret}

	for name, c := range map[string]struct {
		edit   func(w *Webhook)
		status int
	}{
		"no credentials":       {func(w *Webhook) { w.User, w.Password = "", "" }, http.StatusUnauthorized},
		"wrong password":       {func(w *Webhook) { w.Password = "wrong" }, http.StatusUnauthorized},
		"wrong user":           {func(w *Webhook) { w.User = "admin" }, http.StatusUnauthorized},
		"unsigned":             {func(w *Webhook) { w.Secret = "" }, http.StatusUnauthorized},
		"other secret":         {func(w *Webhook) { w.Secret = "whsec_b3RoZXIta2V5" }, http.StatusUnauthorized},
		"secret not decoded":   {func(w *Webhook) { w.Secret = strings.TrimPrefix(hookSecret, "whsec_") }, http.StatusUnauthorized},
		"signature of another": {func(w *Webhook) { w.Signature = Sign(t, hookSecret, w.Delivery, time.Now(), d.Form) }, http.StatusUnauthorized},
		"signed long ago":      {func(w *Webhook) { w.SignedAt = time.Now().Add(-10 * time.Minute) }, http.StatusUnauthorized},
		"signed in the future": {func(w *Webhook) { w.SignedAt = time.Now().Add(10 * time.Minute) }, http.StatusUnauthorized},
		"not JSON":             {func(w *Webhook) { w.Body = []byte(`{"event_type":"call_hangup",`) }, http.StatusBadRequest},
		"no event type":        {func(w *Webhook) { w.Body = []byte(`{"uuid":"x"}`) }, http.StatusBadRequest},
		"form without uuid": {func(w *Webhook) {
			w.Body, w.ContentType = []byte("event_type=call_init&caller=1"), "application/x-www-form-urlencoded"
		}, http.StatusBadRequest},
		"plain text": {func(w *Webhook) { w.ContentType = "text/plain" }, http.StatusBadRequest},
		"not a POST": {func(w *Webhook) { w.Method = http.MethodGet; w.Body = nil }, http.StatusMethodNotAllowed},
		"bad base64": {func(w *Webhook) { w.Signature = "v1,!!!" }, http.StatusUnauthorized},
		"v2 scheme": {func(w *Webhook) {
			w.Signature = strings.Replace(Sign(t, hookSecret, w.Delivery, time.Now(), w.Body), "v1,", "v2,", 1)
		}, http.StatusUnauthorized},
		"empty":       {func(w *Webhook) { w.Body = nil }, http.StatusBadRequest},
		"JSON scalar": {func(w *Webhook) { w.Body = []byte(`"call_init"`) }, http.StatusBadRequest},
	} {
		w := good
		c.edit(&w)
		status, body := crm.Send(t, w)
		assert.Equal(t, c.status, status, "%s: %s", name, body)
	}
	_, err := os.Stat(dbPath)
	if err == nil {
		assert.Empty(t, rows(t, openDB(t, dbPath), `SELECT delivery_id FROM events`), "nothing refused is stored")
	} else {
		require.ErrorIs(t, err, os.ErrNotExist)
	}

	// A redelivery (kanca retrying after a lost answer) is signed anew
	// with the same delivery id: stored once.
	status, body := crm.Send(t, good)
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, fmt.Sprintf(`{"delivery":%q,"duplicate":false}`, d.ID), body)
	again := good
	again.SignedAt = time.Now().Add(-time.Minute)
	status, body = crm.Send(t, again)
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, fmt.Sprintf(`{"delivery":%q,"duplicate":true}`, d.ID), body)
	// The same event as form data, still the same delivery.
	asForm := good
	asForm.Body, asForm.ContentType = d.Form, "application/x-www-form-urlencoded"
	status, body = crm.Send(t, asForm)
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"duplicate":true`)

	// A rotated key: any one of the signatures may match.
	next := corpus[0]
	rotated := Webhook{Path: "/", Body: next.JSON, ContentType: "application/json",
		User: hookUser, Password: hookPassword, Delivery: next.ID}
	rotated.Signature = Sign(t, "whsec_b2xkLWtleQ==", next.ID, time.Now(), next.JSON) + " " + Sign(t, hookSecret, next.ID, time.Now(), next.JSON)
	status, body = crm.Send(t, rotated)
	require.Equal(t, http.StatusOK, status, body)

	db := openDB(t, dbPath)
	stored := map[any]any{}
	for _, r := range rows(t, db, `SELECT delivery_id, COUNT(*) AS n FROM events GROUP BY delivery_id`) {
		stored[r["delivery_id"]] = r["n"]
	}
	assert.Equal(t, map[any]any{d.ID: "1", next.ID: "1"}, stored)
	assert.Len(t, rows(t, db, `SELECT uuid FROM calls WHERE uuid = '`+d.UUID+`'`), 1)
}

// --------------------------------------------------------------- chat relays

// chatKinds are the messages a relay can send, and a phrase that only the
// message of that kind has, per language.
var chatKinds = map[string]map[string]string{
	"tr": {
		"call_init_IN":           "Gelen arama:",
		"call_init_OUT":          "Giden arama:",
		"call_init_extension":    "dahilisine yönlendirildi",
		"call_init_group":        "grubuna yönlendirildi",
		"call_init_menu":         "menüsüne yönlendirildi",
		"fax_init":               "yeni faks geliyor",
		"call_hangup":            "arasındaki görüşme sona erdi",
		"call_hangup_unanswered": "cevaplanmadan sona erdi",
		"call_hangup_fax":        "faks görüşmesi sona erdi",
		"missing_call":           "CEVAPSIZ ARAMA",
	},
	"en": {
		"call_init_IN":           "Incoming call:",
		"call_init_OUT":          "Outgoing call:",
		"call_init_extension":    "to extension",
		"call_init_group":        "to group",
		"call_init_menu":         "entered menu",
		"fax_init":               "Incoming fax",
		"call_hangup":            "ended after",
		"call_hangup_unanswered": "ended unanswered",
		"call_hangup_fax":        "fax call",
		"missing_call":           "MISSED CALL",
	},
}

// chatKind is the message an event should become.
func chatKind(d Delivery) string {
	switch d.Type {
	case "call_init":
		return "call_init_" + str(d.Body["direction"])
	case "call_hangup":
		rec := cdrOf(d)
		if str(rec["bf_calltype"]) == "fax" {
			return "call_hangup_fax"
		}
		if str(rec["answer_time"]) == "" && str(d.Body["talk_duration"]) == "0" {
			return "call_hangup_unanswered"
		}
		return "call_hangup"
	}
	return d.Type
}

type chatLine struct {
	Service string         `json:"service"`
	URL     string         `json:"url"`
	Payload map[string]any `json:"payload"`
}

func readSink(t testing.TB, path string) []chatLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []chatLine
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var c chatLine
		require.NoError(t, json.Unmarshal(l, &c), string(l))
		out = append(out, c)
	}
	return out
}

const (
	hipchatURL = "https://chat.example.com/v2/room/7/notification"
	slackURL   = "https://chat.example.com/hooks/T000/B000/XXXX"
)

func startChat(t testing.TB, lang string, extra ...string) (*PHPServer, string) {
	sink := filepath.Join(t.TempDir(), "sent.ndjson")
	env := append([]string{
		"KANCA_HOOK_USER=" + hookUser,
		"KANCA_HOOK_PASSWORD=" + hookPassword,
		"KANCA_HOOK_SECRET=" + hookSecret,
		"KANCA_CHAT_LANG=" + lang,
		"KANCA_EXAMPLE_DRY_RUN=" + sink,
		"HIPCHAT_URL=" + hipchatURL,
		"SLACK_WEBHOOK_URL=" + slackURL,
	}, extra...)
	return StartPHP(t, filepath.Join("php", "hipchat"), env), sink
}

// fakeChat is a chat service on loopback that takes HipChat room
// notifications and Slack or Mattermost incoming webhooks, as the relays
// post them.
type fakeChat struct {
	URL string

	mu    sync.Mutex
	posts []chatPost
	fails int // the next this many posts are answered 500, as a chat in trouble does
}

type chatPost struct {
	path, auth, contentType string
	payload                 map[string]any
	failed                  bool
}

func startFakeChat(t testing.TB) *fakeChat {
	t.Helper()
	c := &fakeChat{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		_ = json.NewDecoder(r.Body).Decode(&p)
		c.mu.Lock()
		defer c.mu.Unlock()
		post := chatPost{path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), payload: p}
		if c.fails > 0 {
			c.fails--
			post.failed = true
			c.posts = append(c.posts, post)
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		c.posts = append(c.posts, post)
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *fakeChat) failNext(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fails = n
}

// taken returns the posts the chat took, in order, and how many it refused.
func (c *fakeChat) taken() (posts []chatPost, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.posts {
		if p.failed {
			refused++
		} else {
			posts = append(posts, p)
		}
	}
	return posts, refused
}

const (
	hipchatPath = "/v2/room/7/notification"
	slackPath   = "/hooks/T000/B000/XXXX"
	roomToken   = "room-token"
)

// startRelay serves the chat relays, posting to chat.
func startRelay(t testing.TB, chat *fakeChat, lang string) *PHPServer {
	t.Helper()
	return StartPHP(t, filepath.Join("php", "hipchat"), []string{
		"KANCA_HOOK_USER=" + hookUser,
		"KANCA_HOOK_PASSWORD=" + hookPassword,
		"KANCA_HOOK_SECRET=" + hookSecret,
		"KANCA_CHAT_LANG=" + lang,
		"HIPCHAT_URL=" + chat.URL + hipchatPath,
		"HIPCHAT_TOKEN=" + roomToken,
		"SLACK_WEBHOOK_URL=" + chat.URL + slackPath,
	}, "curl")
}

// messageText checks that a post is what the service takes and returns
// the message in it.
func messageText(t *testing.T, service string, p chatPost) string {
	t.Helper()
	switch service {
	case "hipchat":
		assert.Equal(t, hipchatPath, p.path)
		assert.Equal(t, "Bearer "+roomToken, p.auth)
		assert.Equal(t, "application/json", p.contentType)
		assert.Equal(t, "text", p.payload["message_format"])
		assert.Equal(t, "kanca", p.payload["from"])
		text, _ := p.payload["message"].(string)
		return text
	case "slack":
		assert.Equal(t, slackPath, p.path)
		assert.Empty(t, p.auth, "the incoming webhook's URL is its credential")
		assert.Equal(t, "application/json", p.contentType)
		text, _ := p.payload["text"].(string)
		return text
	}
	t.Fatalf("unknown chat service %q", service)
	return ""
}

// whichEvent finds the corpus event a chat message is about: the one call
// whose caller and callee it names, and the one kind of message its
// wording is.
func whichEvent(t *testing.T, corpus []Delivery, lang, text string) (Delivery, bool) {
	t.Helper()
	var calls []string
	for _, d := range corpus {
		if d.Type == "call_init" && strings.Contains(text, str(d.Body["caller"])) && strings.Contains(text, str(d.Body["callee"])) {
			calls = append(calls, d.UUID)
		}
	}
	var kinds []string
	for kind, phrase := range chatKinds[lang] {
		if strings.Contains(text, phrase) {
			kinds = append(kinds, kind)
		}
	}
	if !assert.Len(t, calls, 1, "the calls of %q", text) || !assert.Len(t, kinds, 1, "the kinds of %q", text) {
		return Delivery{}, false
	}
	var found []Delivery
	for _, d := range corpus {
		if d.UUID == calls[0] && chatKind(d) == kinds[0] {
			found = append(found, d)
		}
	}
	if !assert.Len(t, found, 1, "the events of call %s that make a %s message", calls[0], kinds[0]) {
		return Delivery{}, false
	}
	return found[0], true
}

// bulutfonSpellings asks for every event, in the spellings of Bulutfon's
// documentation where it has two, typo included.
var bulutfonSpellings = []string{"call_init", "incoming_call_extension", "incoming_call_group", "call_init_manu",
	"fax_init", "call_hangup", "missing_call"}

// TestChatRelaysForwardWhatKancaDelivers has kanca deliver the recorded
// calls to the HipChat relay in Turkish and the Slack relay in English
// (and the other way round), from a JSON hook and from a form hook asking
// for Bulutfon's spellings, and checks every message the relays post to
// the chat: one per delivery, worded for its event.
func TestChatRelaysForwardWhatKancaDelivers(t *testing.T) {
	RequirePHP(t, "curl")
	corpus := Corpus(t)
	for _, c := range []struct {
		service, lang, path string
	}{{"hipchat", "tr", "/index.php"}, {"slack", "en", "/slack.php"}, {"hipchat", "en", "/"}, {"slack", "tr", "/slack.php"}} {
		t.Run(c.service+"-"+c.lang, func(t *testing.T) {
			chat := startFakeChat(t)
			relay := startRelay(t, chat, c.lang)
			k := NewKanca(t, corpus,
				Receiver{URL: relay.URL + c.path, Format: formats.JSON, Secret: hookSecret},
				Receiver{URL: relay.URL + c.path, Format: formats.Form, Secret: hookSecret, Events: bulutfonSpellings})
			k.Deliver(t)
			for i := range 2 {
				for id, d := range k.Delivered(t, i) {
					atts := k.Attempts(t, id)
					require.Len(t, atts, 1)
					assert.JSONEq(t, fmt.Sprintf(`{"sent":%q}`, chatKind(d)), atts[0].Response, "%s: the relay's answer", d.ID)
				}
			}
			spelt, err := k.Store.Deliveries(context.Background(), hooks.Filter{Limit: 10000})
			require.NoError(t, err)
			names := map[string]bool{}
			for _, d := range spelt {
				names[d.Event] = true
			}
			assert.True(t, names["incoming_call_extension"] && names["incoming_call_group"] && names["call_init_extension"],
				"both spellings were sent: %v", names)

			posts, refused := chat.taken()
			assert.Zero(t, refused)
			require.Len(t, posts, 2*len(corpus), "one message per delivery")
			messages := map[string]int{}
			seen := map[string]bool{}
			for _, p := range posts {
				text := messageText(t, c.service, p)
				d, ok := whichEvent(t, corpus, c.lang, text)
				if !ok {
					continue
				}
				messages[d.ID]++
				kind := chatKind(d)
				seen[kind] = true
				switch c.service {
				case "hipchat":
					assert.Equal(t, d.Type == "missing_call", p.payload["color"] == "red", "%s: red is for missed calls", d.ID)
					assert.Equal(t, d.Type == "missing_call" || d.Type == "fax_init", p.payload["notify"], d.ID)
				case "slack":
					assert.Equal(t, d.Type == "missing_call", strings.HasPrefix(text, ":warning: "), "%s: %s", d.ID, text)
				}
				checkWording(t, c.lang, kind, d, text)
			}
			for _, d := range corpus {
				assert.Equal(t, 2, messages[d.ID], "%s: one message from the JSON hook, one from the form hook", d.ID)
			}
			for kind := range chatKinds[c.lang] {
				assert.True(t, seen[kind], "the corpus has no %s message", kind)
			}
		})
	}
}

// TestChatRelayOddRequests checks what kanca does not send: other
// spellings of an event, events the relay does not know, and requests to
// refuse. The relays write to a file instead of posting (dry run).
func TestChatRelayOddRequests(t *testing.T) {
	for _, c := range []struct {
		service, lang, path string
	}{{"hipchat", "tr", "/index.php"}, {"slack", "en", "/slack.php"}} {
		t.Run(c.service+"-"+c.lang, func(t *testing.T) {
			s, sink := startChat(t, c.lang)
			post := func(body []byte, delivery string, edit func(w *Webhook)) (int, string) {
				w := Webhook{Path: c.path, Body: body, ContentType: "application/json",
					User: hookUser, Password: hookPassword, Delivery: delivery, Secret: hookSecret}
				if edit != nil {
					edit(&w)
				}
				return s.Send(t, w)
			}
			menu := []byte(`{"event_type":"call_init_manu","caller":90532000000,"callee":908508850000,"uuid":"f615986c","direction":"IN","timestamp":1435762851086820,"destination":10}`)
			status, body := post(menu, "alias", nil)
			require.Equal(t, http.StatusOK, status, body)
			unknown := []byte(`{"event_type":"call_transfer","caller":90532000000,"callee":908508850000,"uuid":"f615986c","direction":"IN","timestamp":1}`)
			status, body = post(unknown, "unknown", nil)
			require.Equal(t, http.StatusOK, status, body)
			assert.Contains(t, body, "ignored")
			sent := readSink(t, sink)
			require.Len(t, sent, 1, "an unknown event sends nothing")
			assert.Equal(t, c.service, sent[0].Service)
			assert.Equal(t, map[string]string{"hipchat": hipchatURL, "slack": slackURL}[c.service], sent[0].URL)
			last := sent[0].Payload["message"]
			if c.service == "slack" {
				last = sent[0].Payload["text"]
			}
			assert.Contains(t, last, chatKinds[c.lang]["call_init_menu"])

			// Refusals: nothing sent.
			status, _ = post(menu, "alias", func(w *Webhook) { w.Password = "wrong" })
			assert.Equal(t, http.StatusUnauthorized, status)
			status, _ = post(menu, "alias", func(w *Webhook) { w.Signature = "v1,AAAA" })
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Len(t, readSink(t, sink), 1)
		})
	}
}

func checkWording(t *testing.T, lang, kind string, d Delivery, text string) {
	t.Helper()
	for k, phrase := range chatKinds[lang] {
		assert.Equal(t, k == kind, strings.Contains(text, phrase), "%s (%s) in %s: %q", d.ID, kind, lang, text)
	}
	for _, f := range []string{"caller", "callee"} {
		assert.Contains(t, text, str(d.Body[f]), "%s: the %s is shown", d.ID, f)
	}
	switch kind {
	case "call_init_extension", "call_init_group", "call_init_menu":
		assert.Contains(t, text, " "+str(d.Body["destination"]), d.ID)
	case "call_hangup":
		unit := map[string]string{"tr": " sn)", "en": " s."}[lang]
		assert.Contains(t, text, str(d.Body["talk_duration"])+unit, d.ID)
	case "call_hangup_unanswered", "missing_call", "call_hangup_fax":
		assert.Contains(t, text, "("+str(d.Body["hangup_cause"])+")", d.ID)
	}
	fax := kind == "fax_init" || kind == "call_hangup_fax"
	assert.Equal(t, fax, strings.Contains(strings.ToLower(text), map[string]string{"tr": "faks", "en": "fax"}[lang]),
		"%s: only fax events speak of a fax: %q", d.ID, text)
}

// TestChatDownMeansKancaDeliversAgain: while the chat fails, the relay
// answers 502 and kanca keeps the delivery to try again, holding back the
// call's later events; once the chat takes posts again, every message
// arrives, in the order of the call.
func TestChatDownMeansKancaDeliversAgain(t *testing.T) {
	RequirePHP(t, "curl")
	var busy []Delivery
	for _, d := range Corpus(t) {
		if strings.HasPrefix(d.ID, "s05-busy/") {
			busy = append(busy, d)
		}
	}
	require.Len(t, busy, 4)
	chat := startFakeChat(t)
	relay := startRelay(t, chat, "en")
	k := NewKanca(t, busy,
		Receiver{URL: relay.URL + "/index.php", Format: formats.Form, Secret: hookSecret},
		Receiver{URL: relay.URL + "/slack.php", Format: formats.JSON, Secret: hookSecret})
	// Enough tries for the chat's trouble, quickly.
	k.Retry = hooks.RetryPolicy{Initial: 20 * time.Millisecond, Factor: 1, Attempts: 50}
	const down = 3
	chat.failNext(down)
	k.Deliver(t)

	posts, refused := chat.taken()
	assert.Equal(t, down, refused)
	failed := 0
	for _, i := range []int{0, 1} {
		for id := range k.Delivered(t, i) {
			for _, a := range k.Attempts(t, id) {
				if a.Status == http.StatusBadGateway {
					failed++
					assert.Contains(t, a.Response, "answered HTTP 500", "the relay says why")
				} else {
					assert.Equal(t, http.StatusOK, a.Status)
				}
			}
		}
	}
	assert.Equal(t, down, failed, "each refused post failed one delivery attempt, which kanca repeated")

	kinds := map[string][]string{}
	for _, p := range posts {
		service := map[string]string{hipchatPath: "hipchat", slackPath: "slack"}[p.path]
		text := messageText(t, service, p)
		d, ok := whichEvent(t, busy, "en", text)
		require.True(t, ok)
		kinds[service] = append(kinds[service], chatKind(d))
		if d.Type == "missing_call" {
			assert.Contains(t, text, "MISSED CALL: +"+str(d.Body["caller"]))
		}
	}
	inOrder := []string{"call_init_IN", "call_init_extension", "call_hangup_unanswered", "missing_call"}
	assert.Equal(t, map[string][]string{"hipchat": inOrder, "slack": inOrder}, kinds)
}
