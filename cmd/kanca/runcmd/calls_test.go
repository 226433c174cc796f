package runcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/speech"
)

func post(t *testing.T, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("X-Webhook-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, m
}

// An Alertalk integration pointed at kanca: the webhook is answered 200,
// Asterisk is asked to call each number with the message rendered by the
// real speech engine, and the calls' webhooks carry the autodial fields.
func TestRunPlacesCallsOnRequest(t *testing.T) {
	needSpeech(t)
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	ast.OnOriginate(func(endpoint string) aritest.Callee {
		return aritest.Callee{Busy: strings.Contains(endpoint, "05329999991")}
	})

	recv, received := receiver(t)
	db := dbWithHook(t, recv)
	key := addKey(t, db, 3)

	t.Setenv("KANCA_ARI_PASSWORD", "kanca")
	addr, _, _ := startRun(t, db, "--ari-url", ast.URL, "--ari-user", "kanca", "--dial", "PJSIP/{number}@carrier")
	base := "http://" + addr
	hook := base + "/webhook/receive"

	// Each answer code of Alertalk's contract; none places a call.
	code, m := post(t, hook, "", `{"phone_number":"5321234567","error_message":"x"}`)
	assert.Equal(t, http.StatusForbidden, code, m)
	code, m = post(t, hook, "kk_wrong", `{"phone_number":"5321234567","error_message":"x"}`)
	assert.Equal(t, http.StatusForbidden, code, m)
	code, m = post(t, hook, key, `{"error_message":"x"}`)
	assert.Equal(t, http.StatusBadRequest, code, m)
	assert.Equal(t, "phone_number", m["field"])
	code, m = post(t, hook, key, `{"phone_number":"5321234567","error_message":"`+strings.Repeat("a", 501)+`"}`)
	assert.Equal(t, http.StatusBadRequest, code, m)
	assert.Equal(t, "error_message", m["field"])
	code, m = post(t, hook, key, `{"phone_number":"09001234567","error_message":"x"}`)
	assert.Equal(t, http.StatusBadRequest, code, m, "premium rate refused")
	code, m = post(t, hook, key, `{"phone_number":"+441234567890","error_message":"x"}`)
	assert.Equal(t, http.StatusBadRequest, code, m, "abroad refused")

	code, m = post(t, hook, key, `{"phone_number":"5321234567,5329999991","error_message":"Kritik alarm: disk dolu."}`)
	require.Equal(t, http.StatusOK, code, m)
	assert.Equal(t, "2 call(s) queued", m["message"])
	assert.Equal(t, "success", m["status"])
	// Two more would pass the budget of 3 a day.
	code, m = post(t, hook, key, `{"phone_number":"5321234567,5321234568","error_message":"again"}`)
	assert.Equal(t, http.StatusPaymentRequired, code, m)

	waitHangups(t, received, 2)
	orig := ast.Originated()
	require.Len(t, orig, 2, "one call per number, no more")
	byEndpoint := map[string]aritest.Originated{}
	for _, o := range orig {
		byEndpoint[o.Query["endpoint"]] = o
		assert.Equal(t, "908508850000", o.Query["callerId"])
		assert.Equal(t, "kanca", o.Query["app"])
		assert.Equal(t, "30", o.Query["timeout"])
		assert.Equal(t, o.ChannelID, o.Query["channelId"])
	}
	answered := byEndpoint["PJSIP/05321234567@carrier"]
	require.Len(t, answered.Plays, 1)
	assert.True(t, answered.HungUp, "kanca hangs up after the message")
	busy := byEndpoint["PJSIP/05329999991@carrier"]
	assert.Empty(t, busy.Plays)

	// The PBX fetches the message from kanca: 8 kHz mono speech.
	media := strings.TrimPrefix(answered.Plays[0], "sound:")
	require.True(t, strings.HasPrefix(media, base+"/speech/"), media)
	resp, err := http.Get(media)
	require.NoError(t, err)
	wav, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	w, err := speech.ParseWAV(wav)
	require.NoError(t, err)
	assert.Equal(t, 8000, w.Rate)
	assert.Greater(t, w.RMS(), 300.0)

	for _, e := range received() {
		assert.Equal(t, "OUT", e["direction"], e)
		assert.EqualValues(t, 908508850000, e["caller"])
		assert.Equal(t, true, e["autodial"])
		assert.Contains(t, e, "additional_data")
		assert.Nil(t, e["additional_data"])
		assert.Nil(t, e["callback_url"])
		if e["event_type"] == "call_hangup" {
			switch e["callee"] {
			case float64(905321234567):
				assert.Equal(t, "SUCCESS", e["result_disposition"])
			case float64(905329999991):
				assert.Equal(t, "USER_BUSY", e["hangup_cause"])
			default:
				t.Errorf("unexpected callee %v", e["callee"])
			}
		}
	}

	// A request's callback_url gets its calls' events too, with its
	// additional_data.
	cb, cbEvents := receiver(t)
	code, m = post(t, base+"/call-requests", key, `{"numbers":["5321234567"],"text":"Kritik alarm: disk dolu.","additional_data":"INC-7","callback_url":"`+cb+`/hook"}`)
	require.Equal(t, http.StatusOK, code, m)
	waitFor(t, "the callback URL to get the call_hangup", func() bool {
		evs := cbEvents()
		return len(evs) > 0 && evs[len(evs)-1]["event_type"] == "call_hangup"
	})
	require.Len(t, cbEvents(), 2)
	for _, e := range cbEvents() {
		assert.Equal(t, "INC-7", e["additional_data"])
		assert.Equal(t, cb+"/hook", e["callback_url"])
		assert.Equal(t, true, e["autodial"])
	}

	// The audit trail, as the key's owner reads it.
	req, _ := http.NewRequest(http.MethodGet, base+"/automatic-calls", nil)
	req.Header.Set("X-Webhook-Key", key)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var list []autodial.RequestView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	require.Len(t, list, 2)
	require.Len(t, list[1].Calls, 2)
	states := map[string]string{}
	for _, c := range list[1].Calls {
		states[c.Number] = c.State
		assert.True(t, c.HasCalled)
	}
	assert.Equal(t, map[string]string{"905321234567": autodial.StateAnswered, "905329999991": autodial.StateUnanswered}, states)
}

// needSpeech fails under CI, and skips elsewhere, without the speech
// engine.
func needSpeech(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("espeak-ng is not installed (Debian package espeak-ng): %v", err)
		}
		t.Skip("espeak-ng not installed")
	}
}

// addKey stores a key allowed to call Turkish numbers from the PBX
// number the hook is for, and returns it.
func addKey(t *testing.T, db string, budget int) string {
	t.Helper()
	calls, err := autodial.Open(autodial.PathFor(db))
	require.NoError(t, err)
	defer calls.Close()
	key, err := calls.AddKey(context.Background(), autodial.Key{Name: "ops", Allow: []string{"90"}, DailyBudget: budget,
		RatePerMinute: 100, From: []string{"908508850000"}})
	require.NoError(t, err)
	return key
}

// An Alertalk request through FreeSWITCH: each number is originated on
// the event socket kanca follows, the answered leg is played the speech
// over HTTP and killed, and the legs' webhooks are OUT from the PBX
// number with the autodial fields.
func TestRunPlacesCallsThroughFreeSWITCH(t *testing.T) {
	needSpeech(t)
	fs := esltest.NewServer(esltest.Options{})
	t.Cleanup(fs.Close)
	fs.OnOriginate(func(endpoint string) esltest.Callee {
		return esltest.Callee{Busy: strings.HasSuffix(endpoint, "/05329999991")}
	})
	recv, received := receiver(t)
	db := dbWithHook(t, recv)
	key := addKey(t, db, 10)

	t.Setenv("KANCA_ESL_PASSWORD", "ClueCon")
	addr, _, _ := startRun(t, db, "--pbx", "freeswitch", "--esl-addr", fs.Addr, "--dial", "sofia/gateway/carrier/{number}")
	base := "http://" + addr
	waitFor(t, "kanca to follow the event socket", func() bool { return fs.Connections() > 0 })

	cb, cbEvents := receiver(t)
	code, m := post(t, base+"/webhook/receive", key, `{"phone_number":"5321234567,5329999991","error_message":"Kritik alarm: disk dolu."}`)
	require.Equal(t, http.StatusOK, code, m)
	assert.Equal(t, "2 call(s) queued", m["message"])
	code, m = post(t, base+"/call-requests", key, `{"numbers":["5321234568"],"text":"Kritik alarm.","additional_data":"INC-7","callback_url":"`+cb+`/hook"}`)
	require.Equal(t, http.StatusOK, code, m)

	waitHangups(t, received, 3)
	orig := fs.Originated()
	require.Len(t, orig, 3, "one call per number, no more")
	byEndpoint := map[string]esltest.Originated{}
	for _, o := range orig {
		byEndpoint[o.Endpoint] = o
		assert.Equal(t, "908508850000", o.Vars["origination_caller_id_number"])
		assert.Equal(t, "30", o.Vars["originate_timeout"])
		assert.Equal(t, "&park()", o.Target)
	}
	answered := byEndpoint["sofia/gateway/carrier/05321234567"]
	require.Len(t, answered.Plays, 1)
	assert.True(t, strings.HasPrefix(answered.Plays[0], "playback::http_cache://"+base+"/speech/"), answered.Plays[0])
	assert.True(t, answered.Killed, "kanca hangs up after the message")
	assert.Empty(t, byEndpoint["sofia/gateway/carrier/05329999991"].Plays)

	for _, e := range received() {
		assert.Equal(t, "OUT", e["direction"], e)
		assert.EqualValues(t, 908508850000, e["caller"], e)
		assert.Equal(t, true, e["autodial"], e)
		assert.Contains(t, e, "additional_data")
		assert.Contains(t, e, "callback_url")
		if e["event_type"] != "call_hangup" {
			continue
		}
		switch e["callee"] {
		case float64(905321234567), float64(905321234568):
			assert.Equal(t, "SUCCESS", e["result_disposition"], e)
		case float64(905329999991):
			assert.Equal(t, "USER_BUSY", e["hangup_cause"], e)
		default:
			t.Errorf("unexpected callee %v", e["callee"])
		}
	}
	waitFor(t, "the callback URL to get the call_hangup", func() bool {
		evs := cbEvents()
		return len(evs) > 0 && evs[len(evs)-1]["event_type"] == "call_hangup"
	})
	for _, e := range cbEvents() {
		assert.Equal(t, "INC-7", e["additional_data"])
		assert.Equal(t, cb+"/hook", e["callback_url"])
		assert.EqualValues(t, 905321234568, e["callee"])
	}
}

// waitHangups waits for n call_hangup webhooks.
func waitHangups(t *testing.T, received func() []map[string]any, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d calls to end with their webhooks", n), func() bool {
		got := 0
		for _, e := range received() {
			if e["event_type"] == "call_hangup" {
				got++
			}
		}
		return got == n
	})
}

// receiver is a webhook receiver; received returns the bodies so far.
func receiver(t *testing.T) (url string, received func() []map[string]any) {
	var mu sync.Mutex
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), bodies...)
	}
}
