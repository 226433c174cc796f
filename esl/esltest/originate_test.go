package esltest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// events reads event frames until the BACKGROUND_JOB, and returns each
// event's headers in order.
func (r *raw) eventsUntilJob() []map[string]string {
	r.t.Helper()
	var out []map[string]string
	for {
		f := r.frame()
		require.Equal(r.t, "text/event-json", f.header["Content-Type"])
		var e map[string]string
		require.NoError(r.t, json.Unmarshal([]byte(f.body), &e))
		out = append(out, e)
		if e["Event-Name"] == "BACKGROUND_JOB" {
			return out
		}
	}
}

func names(evs []map[string]string) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e["Event-Name"])
	}
	return out
}

const originate = "originate {origination_uuid=kanca-1,origination_caller_id_number=908508850000,originate_timeout=20,ignore_early_media=true}sofia/gateway/carrier/05321234567 &park()"

// bgapi originate: the reply names the job at once; the leg's events
// follow, then BACKGROUND_JOB with "+OK UUID" once it answered; then
// uuid_broadcast plays (the callee presses its key) and uuid_kill ends it.
func TestOriginateAnswered(t *testing.T) {
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.OnOriginate(func(string) Callee { return Callee{Digit: "1"} })
	c := dial(t, srv)
	c.login("ClueCon")
	c.send("event json CHANNEL_CREATE CHANNEL_ORIGINATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_EXECUTE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY DTMF BACKGROUND_JOB")
	c.frame()
	c.send("bgapi " + originate)
	reply := c.frame()
	require.True(t, strings.HasPrefix(reply.header["Reply-Text"], "+OK Job-UUID: "), reply.header)
	job := reply.header["Job-UUID"]

	evs := c.eventsUntilJob()
	assert.Equal(t, []string{"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_EXECUTE", "BACKGROUND_JOB"}, names(evs))
	create := evs[0]
	assert.Equal(t, "kanca-1", create["Unique-ID"])
	assert.Equal(t, "kanca-1", create["Channel-Call-UUID"])
	assert.Equal(t, "outbound", create["Call-Direction"])
	assert.Equal(t, "908508850000", create["Caller-Caller-ID-Number"])
	assert.Equal(t, "05321234567", create["Caller-Destination-Number"])
	assert.Equal(t, "sofia/external/05321234567", create["Channel-Name"])
	assert.Equal(t, "ringing", create["Answer-State"])
	assert.NotContains(t, create, "Other-Type", "an API originate has no originator")
	assert.Equal(t, "answered", evs[3]["Answer-State"])
	assert.NotEqual(t, "0", evs[3]["Caller-Channel-Answered-Time"])
	assert.Equal(t, "park", evs[4]["Application"])
	bg := evs[5]
	assert.Equal(t, job, bg["Job-UUID"])
	assert.Equal(t, "originate", bg["Job-Command"])
	assert.Equal(t, strings.TrimPrefix(originate, "originate "), bg["Job-Command-Arg"])
	assert.Equal(t, "+OK kanca-1\n", bg["_body"])

	var rest []map[string]string
	c.send("api uuid_broadcast kanca-1 playback::http_cache://127.0.0.1/m.wav aleg")
	assert.Equal(t, "+OK Message sent\n", c.nextAPI(&rest))
	c.send("api uuid_broadcast nosuch playback::x aleg")
	assert.Equal(t, "-ERR invalid uuid\n", c.nextAPI(&rest))
	c.send("api uuid_kill kanca-1")
	assert.Equal(t, "+OK\n", c.nextAPI(&rest))
	c.send("api uuid_kill kanca-1")
	assert.Equal(t, "-ERR No such channel!\n", c.nextAPI(&rest))
	for len(rest) < 4 {
		f := c.frame()
		var e map[string]string
		require.NoError(t, json.Unmarshal([]byte(f.body), &e))
		rest = append(rest, e)
	}
	assert.Equal(t, []string{"DTMF", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}, names(rest))
	assert.Equal(t, "1", rest[0]["DTMF-Digit"])
	assert.Equal(t, "NORMAL_CLEARING", rest[2]["Hangup-Cause"])
	assert.Equal(t, "16", rest[2]["variable_hangup_cause_q850"])
	assert.Equal(t, "send_bye", rest[2]["variable_sip_hangup_disposition"])

	o := srv.Originated()
	require.Len(t, o, 1)
	assert.Equal(t, "sofia/gateway/carrier/05321234567", o[0].Endpoint)
	assert.Equal(t, "&park()", o[0].Target)
	assert.Equal(t, []string{"playback::http_cache://127.0.0.1/m.wav"}, o[0].Plays)
	assert.True(t, o[0].Killed)
}

// nextAPI reads to the next api/response and returns its body; the
// events before it are added to evs.
func (r *raw) nextAPI(evs *[]map[string]string) string {
	r.t.Helper()
	for {
		f := r.frame()
		if f.header["Content-Type"] == "api/response" {
			return f.body
		}
		var e map[string]string
		require.NoError(r.t, json.Unmarshal([]byte(f.body), &e))
		*evs = append(*evs, e)
	}
}

// Busy and no answer end the leg with the causes FreeSWITCH sets, and
// the job answers "-ERR CAUSE".
func TestOriginateUnanswered(t *testing.T) {
	for _, tc := range []struct {
		callee      Callee
		events      []string
		cause, q850 string
		disposition string
	}{
		{Callee{Busy: true}, []string{"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "BACKGROUND_JOB"},
			"USER_BUSY", "17", "recv_refuse"},
		{Callee{NoAnswer: true}, []string{"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "BACKGROUND_JOB"},
			"NO_ANSWER", "19", "send_cancel"},
	} {
		t.Run(tc.cause, func(t *testing.T) {
			srv := NewServer(Options{})
			t.Cleanup(srv.Close)
			srv.OnOriginate(func(string) Callee { return tc.callee })
			c := dial(t, srv)
			c.login("ClueCon")
			c.send("event json ALL")
			c.frame()
			c.send("bgapi " + originate)
			c.frame()
			evs := c.eventsUntilJob()
			assert.Equal(t, tc.events, names(evs))
			end := evs[len(evs)-3]
			assert.Equal(t, tc.cause, end["Hangup-Cause"])
			assert.Equal(t, tc.q850, end["variable_hangup_cause_q850"])
			assert.Equal(t, tc.disposition, end["variable_sip_hangup_disposition"])
			assert.Equal(t, "0", end["Caller-Channel-Answered-Time"])
			assert.Equal(t, "-ERR "+tc.cause+"\n", evs[len(evs)-1]["_body"])
			var more []map[string]string
			c.send("api uuid_kill kanca-1")
			assert.Equal(t, "-ERR No such channel!\n", c.nextAPI(&more))
			assert.Empty(t, more)
		})
	}
}
