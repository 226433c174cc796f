package hooks

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDefaultRetryPolicySpansAboutADay(t *testing.T) {
	p := DefaultRetryPolicy
	span := p.Span()
	assert.Greater(t, span, 22*time.Hour)
	assert.Less(t, span, 26*time.Hour)
	_, ok := p.Next(p.Attempts)
	assert.False(t, ok, "the last attempt has no successor")
	_, ok = p.Next(p.Attempts - 1)
	assert.True(t, ok)
	for n := 1; n < p.Attempts; n++ {
		nominal, _ := p.nominal(n)
		d, _ := p.Next(n)
		assert.GreaterOrEqual(t, d, time.Duration(float64(nominal)*(1-p.Jitter)), n)
		assert.Less(t, d, time.Duration(float64(nominal)*(1+p.Jitter)), n)
	}
	assert.Contains(t, p.String(), "33 attempts over about 24h25m;")
	assert.Contains(t, p.String(), "10s, 20s, 40s")
	assert.Contains(t, p.String(), "then every 1h (±20% jitter)")
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	resp := func(code int, v string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}}
		r.Header.Set("Retry-After", v)
		return r
	}
	assert.Equal(t, 120*time.Second, retryAfter(resp(429, "120"), now))
	assert.Equal(t, 90*time.Second, retryAfter(resp(503, now.Add(90*time.Second).Format(http.TimeFormat)), now))
	assert.Zero(t, retryAfter(resp(500, "120"), now), "only 429 and 503")
	assert.Zero(t, retryAfter(resp(429, "soon"), now))
	assert.Zero(t, retryAfter(resp(429, now.Add(-time.Hour).Format(http.TimeFormat)), now))
	assert.Equal(t, maxRetryAfter, retryAfter(resp(429, "99999999999999"), now))
}
