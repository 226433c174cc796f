package hooks

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy is the whole retry schedule: after failed attempt n (1-based)
// the next one waits Initial*Factor^(n-1), capped at Max, give or take
// Jitter; after Attempts attempts the delivery is dead.
type RetryPolicy struct {
	Initial  time.Duration
	Factor   float64
	Max      time.Duration
	Attempts int     // tries in all, the first one included
	Jitter   float64 // 0.2: each wait is scaled by a random factor in [0.8, 1.2)
}

// DefaultRetryPolicy spans about a day: 10 s doubling to an hour, then
// hourly, 33 tries. Symmetric jitter keeps the expected total unchanged.
var DefaultRetryPolicy = RetryPolicy{Initial: 10 * time.Second, Factor: 2, Max: time.Hour, Attempts: 33, Jitter: 0.2}

// Next returns the wait after failed attempt n (1-based), or false when n
// was the last attempt.
func (p RetryPolicy) Next(n int) (time.Duration, bool) {
	d, ok := p.nominal(n)
	if !ok {
		return 0, false
	}
	if p.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - p.Jitter + 2*p.Jitter*rand.Float64()))
	}
	return d, true
}

func (p RetryPolicy) nominal(n int) (time.Duration, bool) {
	if n < 1 || n >= p.Attempts {
		return 0, false
	}
	d := float64(p.Initial) * math.Pow(p.Factor, float64(n-1))
	if p.Max > 0 && d > float64(p.Max) {
		d = float64(p.Max)
	}
	return time.Duration(d), true
}

// Span is the nominal time from the first attempt to the last.
func (p RetryPolicy) Span() time.Duration {
	var total time.Duration
	for n := 1; ; n++ {
		d, ok := p.nominal(n)
		if !ok {
			return total
		}
		total += d
	}
}

// String describes the schedule for people: it is printed by --help.
func (p RetryPolicy) String() string {
	var waits []string
	for n := 1; ; n++ {
		d, ok := p.nominal(n)
		if !ok {
			break
		}
		if p.Max > 0 && d == p.Max {
			waits = append(waits, "then every "+short(d))
			break
		}
		waits = append(waits, short(d))
	}
	return fmt.Sprintf("%d attempts over about %s; waits %s (±%d%% jitter)",
		p.Attempts, short(p.Span().Round(time.Minute)), strings.Join(waits, ", "), int(math.Round(p.Jitter*100)))
}

// short drops the zero units Duration.String prints: 1h0m0s is 1h.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (p RetryPolicy) validate() error {
	if p.Initial <= 0 || p.Factor < 1 || p.Attempts < 1 || p.Jitter < 0 || p.Jitter >= 1 {
		return fmt.Errorf("invalid retry policy %+v", p)
	}
	return nil
}

// decide turns an attempt's result into the delivery's next state.
//
// Only a 2xx is success. 410 Gone means the receiver wants nothing more:
// the hook is disabled and its queue given up. Everything else, 3xx and
// every other 4xx included, is retried on the schedule: a 400 or 404 is
// usually a receiver being deployed or misconfigured, and a day of retries
// costs little where dropping a call event loses it for good.
func decide(p RetryPolicy, attempts int, r AttemptResult, now time.Time) outcome {
	switch {
	case r.Err == nil && r.Status >= 200 && r.Status < 300:
		return outcome{state: Delivered, next: now}
	case r.Err == nil && r.Status == http.StatusGone:
		return outcome{state: Dead, next: now, gone: true,
			reason: "hook disabled: the receiver answered 410 Gone at " + now.UTC().Format(time.RFC3339)}
	}
	wait, ok := p.Next(attempts)
	if !ok {
		return outcome{state: Dead, next: now, reason: fmt.Sprintf("gave up after %d attempts: %s", attempts, r.errText())}
	}
	if r.RetryAfter > wait {
		wait = r.RetryAfter
	}
	return outcome{state: Retrying, next: now.Add(wait)}
}

// maxRetryAfter keeps a receiver from parking a delivery beyond the
// schedule's own horizon.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads Retry-After (seconds or an HTTP date) on 429 and 503.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
