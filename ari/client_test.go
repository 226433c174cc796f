package ari

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
)

// A request Asterisk never answers fails once HTTPTimeout has passed, with
// an error that says so, even when the caller set no deadline.
func TestClientTimesOutARequestNeverAnswered(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s, err := New(Config{URL: srv.URL, User: "kanca", Password: "kanca", HTTPTimeout: 100 * time.Millisecond})
	require.NoError(t, err)

	err = s.Client().Do(context.Background(), http.MethodPost, "/channels/c1/play?media=sound:beep", nil, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "POST /channels/c1/play?media=sound:beep: no answer from Asterisk within 100ms: context deadline exceeded", err.Error())
}

// Do sends the source's credentials and a JSON body, decodes the answer,
// and names Asterisk's refusals.
func TestClientDo(t *testing.T) {
	var got struct {
		method, auth, ctype string
		body                map[string]any
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ari/channels", func(w http.ResponseWriter, r *http.Request) {
		got.method, got.auth, got.ctype = r.Method, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"c9","state":"Down"}`))
	})
	mux.HandleFunc("DELETE /ari/channels/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Channel not found"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s, err := New(Config{URL: srv.URL, User: "kanca", Password: "pw"})
	require.NoError(t, err)

	var ch struct{ ID, State string }
	require.NoError(t, s.Client().Do(context.Background(), http.MethodPost, "/channels?endpoint=PJSIP/1000&app=kanca",
		map[string]any{"variables": map[string]string{"CALLERID(num)": "100"}}, &ch))
	assert.Equal(t, "c9", ch.ID)
	assert.Equal(t, "Basic a2FuY2E6cHc=", got.auth)
	assert.Equal(t, "application/json", got.ctype)
	assert.Equal(t, map[string]any{"variables": map[string]any{"CALLERID(num)": "100"}}, got.body)

	err = s.Client().Do(context.Background(), http.MethodDelete, "/channels/gone", nil, nil)
	assert.EqualError(t, err, "DELETE /channels/gone: HTTP 404 Not Found: Channel not found")
}

// The client the source lists channels with is the one it hands out, so
// commands carry the same credentials; a refused one says why.
func TestClientUsesTheSourceCredentials(t *testing.T) {
	fake := aritest.NewServer(aritest.Options{Password: "right"})
	t.Cleanup(fake.Close)
	s, err := New(Config{URL: fake.URL, User: "kanca", Password: "right"})
	require.NoError(t, err)
	info, err := s.Client().Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "20.20.1", info.Version)

	fake.SetAuth("kanca", "changed")
	_, err = s.Info(context.Background())
	assert.ErrorIs(t, err, ErrUnauthorized)
}
