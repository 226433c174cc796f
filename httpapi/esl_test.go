package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/httpapi"
)

type eslStats esl.Stats

func (s eslStats) Stats() esl.Stats { return esl.Stats(s) }

// With FreeSWITCH as the PBX, health and metrics follow the event socket.
func TestHealthAndMetricsFollowTheEventSocket(t *testing.T) {
	store, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })

	down := httptest.NewServer(httpapi.Handler(httpapi.Config{Store: store, Logger: quiet,
		ESL: eslStats{Link: follow.Link{LastError: "event socket 127.0.0.1:8021: FreeSWITCH refused the event socket password"}}}))
	defer down.Close()
	code, body := get(t, down.URL+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "event socket: not connected to FreeSWITCH: event socket 127.0.0.1:8021: FreeSWITCH refused the event socket password", got["reason"])
	assert.Equal(t, 0.0, value(t, scrape(t, down.URL), "kanca_esl_connected", nil))

	up := httptest.NewServer(httpapi.Handler(httpapi.Config{Store: store, Logger: quiet,
		ESL: eslStats{Link: follow.Link{Connected: true, Reconnects: 2}, Malformed: 1,
			ByName: map[string]uint64{"CHANNEL_CREATE": 4, "CUSTOM menu::enter": 1}}}))
	defer up.Close()
	code, body = get(t, up.URL+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	fams := scrape(t, up.URL)
	assert.Equal(t, 1.0, value(t, fams, "kanca_esl_connected", nil))
	assert.Equal(t, 2.0, value(t, fams, "kanca_esl_reconnects_total", nil))
	assert.Equal(t, 1.0, value(t, fams, "kanca_esl_malformed_events_total", nil))
	assert.Equal(t, 4.0, value(t, fams, "kanca_esl_events_total", map[string]string{"name": "CHANNEL_CREATE"}))
	assert.Equal(t, 1.0, value(t, fams, "kanca_esl_events_total", map[string]string{"name": "CUSTOM menu::enter"}))
	assert.NotContains(t, fams, "kanca_ari_connected", "no Asterisk here")
}
