package hooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/kanca/kanca/version"
)

const (
	// keepResponse is how much of a response body the attempt log keeps.
	keepResponse = 1 << 10
	// drainResponse is how much more is read so the connection can be
	// reused; a longer body is cut off and the connection closed.
	drainResponse = 64 << 10
)

// AttemptResult is what one POST to a hook came to.
type AttemptResult struct {
	Status     int           // 0: no response
	Latency    time.Duration // from sending to the end of the kept body
	Response   string        // the first KiB of the response body
	Err        error         // transport failure: refused, timeout, TLS
	RetryAfter time.Duration // asked for by a 429 or 503
}

// OK reports a 2xx.
func (r AttemptResult) OK() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

func (r AttemptResult) errText() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.OK():
		return ""
	case r.Status >= 300 && r.Status < 400:
		return fmt.Sprintf("HTTP %d %s: redirects are not followed; point the hook at the final URL", r.Status, http.StatusText(r.Status))
	}
	return fmt.Sprintf("HTTP %d %s", r.Status, http.StatusText(r.Status))
}

// sender owns the two HTTP clients: hooks differ only in whether they
// verify TLS, and sharing transports keeps connections pooled.
type sender struct {
	verify, insecure *http.Client
	now              func() time.Time
	templates        compiledCache
}

func newSender(connect time.Duration, now func() time.Time, policy NetPolicy) *sender {
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if !policy.IsZero() {
		dialer.Control = policy.control
		// Through a proxy the policy would judge the proxy's address and
		// the proxy would pick the destination: a policy means direct.
		proxy = nil
	}
	client := func(insecure bool) *http.Client {
		tr := &http.Transport{
			Proxy:               proxy,
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: connect,
			// Many hooks often point at one receiver (a CRM), each with
			// up to its MaxInFlight requests open: a pool smaller than
			// that closes connections after use and dials new ones all
			// the time.
			MaxIdleConnsPerHost:   DefaultMaxInFlight,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
		}
		if insecure {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the admin opted out per hook
		}
		return &http.Client{
			Transport: tr,
			// A redirect is a failure to be fixed in the hook's URL, not
			// followed: following would re-send the body who knows where.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return &sender{verify: client(false), insecure: client(true), now: now}
}

func (s *sender) close() {
	s.verify.CloseIdleConnections()
	s.insecure.CloseIdleConnections()
}

// send sends one delivery to its hook, as the hook's method and templates
// make it. It never returns without a result: every failure is in
// AttemptResult.Err or Status.
func (s *sender) send(ctx context.Context, h Hook, d Delivery) AttemptResult {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	b, err := build(h, d, s.templates.compile)
	if err != nil {
		return AttemptResult{Err: fmt.Errorf("build request: %w", err)}
	}
	var body io.Reader
	if b.body != nil {
		body = bytes.NewReader(b.body)
	}
	req, err := http.NewRequestWithContext(ctx, b.method, b.url, body)
	if err != nil {
		return AttemptResult{Err: fmt.Errorf("build request: %w", err)}
	}
	for _, kv := range b.header {
		req.Header.Set(kv[0], kv[1])
	}
	req.Header.Set("User-Agent", version.UserAgent())
	req.Header.Set("X-Kanca-Event", d.Event)
	req.Header.Set("X-Kanca-Delivery", d.ID)
	req.Header.Set("X-Kanca-Sequence", strconv.Itoa(d.Seq))
	req.Header.Set("X-Kanca-Call", d.CallID)
	if h.User != "" {
		req.SetBasicAuth(h.User, h.Password)
	}
	if h.Secret != "" {
		key, err := signingKey(h.Secret)
		if err != nil {
			return AttemptResult{Err: err}
		}
		ts := s.now()
		req.Header.Set("webhook-id", d.ID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		// What was sent is what is signed: a template's body, or a GET's
		// query, not the stored event.
		req.Header.Set("webhook-signature", sign(key, d.ID, ts, b.payload))
	}
	client := s.verify
	if h.InsecureSkipVerify {
		client = s.insecure
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return AttemptResult{Latency: time.Since(start), Err: err}
	}
	defer resp.Body.Close()
	kept, err := io.ReadAll(io.LimitReader(resp.Body, keepResponse))
	r := AttemptResult{
		Status:     resp.StatusCode,
		Latency:    time.Since(start),
		Response:   string(kept),
		RetryAfter: retryAfter(resp, s.now()),
	}
	if err == nil {
		// Best effort: a body beyond the limit is cut off by Close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainResponse))
	}
	return r
}
