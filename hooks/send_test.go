package hooks

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sendOnce(t *testing.T, h Hook) AttemptResult {
	t.Helper()
	if h.Timeout == 0 {
		h.Timeout = 10 * time.Second
	}
	snd := newSender(time.Second, time.Now, NetPolicy{})
	defer snd.close()
	return snd.send(context.Background(), h, Delivery{ID: "d1", Event: "call_init", Body: []byte(`{"event_type":"call_init"}`)})
}

// A receiver answering an endless body costs one KiB of log and a bounded
// read, not memory or the request's whole timeout.
func TestResponseBodyIsBounded(t *testing.T) {
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("y", 32<<10))
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	start := time.Now()
	r := sendOnce(t, Hook{URL: srv.URL, Timeout: time.Minute})
	require.NoError(t, r.Err)
	assert.True(t, r.OK())
	assert.Len(t, r.Response, keepResponse)
	assert.Less(t, time.Since(start), 30*time.Second, "the body is cut off, not read to the timeout")
	// The server keeps writing into socket buffers for a moment after the
	// close; what matters is that it was cut off far below "endless".
	assert.Less(t, written.Load(), int64(64<<20))
}

// A redirect, a loop of them included, is one request and a failed
// attempt that says why.
func TestRedirectIsNotFollowed(t *testing.T) {
	var hits atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, srv.URL+r.URL.Path, http.StatusTemporaryRedirect) // to itself, for ever
	}))
	defer srv.Close()
	r := sendOnce(t, Hook{URL: srv.URL + "/loop"})
	require.NoError(t, r.Err)
	assert.False(t, r.OK())
	assert.Equal(t, http.StatusTemporaryRedirect, r.Status)
	assert.Equal(t, int64(1), hits.Load())
	assert.Equal(t, "HTTP 307 Temporary Redirect: redirects are not followed; point the hook at the final URL", r.errText())
}

// TLS is verified unless the hook opts out; httptest's certificate is
// self-signed, as a receiver's test setup often is.
func TestTLSVerifiedUnlessHookOptsOut(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()

	r := sendOnce(t, Hook{URL: srv.URL})
	require.Error(t, r.Err)
	assert.Contains(t, r.errText(), "certificate")
	assert.Zero(t, r.Status)
	assert.Zero(t, got.Load(), "no body sent over an unverified connection")

	r = sendOnce(t, Hook{URL: srv.URL, InsecureSkipVerify: true})
	require.NoError(t, r.Err)
	assert.True(t, r.OK())
	assert.Equal(t, int64(1), got.Load())
}
