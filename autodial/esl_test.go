package autodial_test

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow/sourcetest"
)

// newESLRig is a runner on a fake FreeSWITCH event socket, fed by a real
// event socket source, placing calls on the connection it follows with.
func newESLRig(t *testing.T, path string, callee func(string) esltest.Callee) (*rig, *esltest.Server) {
	t.Helper()
	fs := esltest.NewServer(esltest.Options{})
	t.Cleanup(fs.Close)
	if callee != nil {
		fs.OnOriginate(callee)
	}
	src, err := esl.New(esl.Config{Addr: fs.Addr, Password: "ClueCon"})
	require.NoError(t, err)
	rg := newRunnerRig(t, path, autodial.ESLDialer{Conn: src, Context: "from-internal"}, src.Run)
	rg.runner.Trunks = []autodial.Trunk{{Template: "sofia/gateway/carrier/{number}"}}
	// Calls are placed on the followed connection: wait for it.
	sourcetest.WaitFor(t, fs.Stage, func() bool { return fs.Connections() > 0 })
	return rg, fs
}

// Escalation through FreeSWITCH: each number is originated in turn with
// kanca's channel id, the answered leg is played the message and killed;
// the number that presses a key acknowledges and the rest are skipped.
func TestESLEscalationUntilAcknowledged(t *testing.T) {
	rg, fs := newESLRig(t, filepath.Join(t.TempDir(), "c.db"), func(ep string) esltest.Callee {
		if strings.HasSuffix(ep, "/05322222222") {
			return esltest.Callee{Digit: "1"}
		}
		return esltest.Callee{}
	})
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111", "905322222222", "905323333333"},
		Text: "disk dolu", Gather: true, Escalate: true, Timeout: 25})
	rg.run(t)
	v := waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateAnswered,
		"905322222222": autodial.StateAcked, "905323333333": autodial.StateSkipped})
	assert.Equal(t, "1", v.Calls[1].Gather)
	orig := fs.Originated()
	require.Len(t, orig, 2)
	assert.Equal(t, "sofia/gateway/carrier/05321111111", orig[0].Endpoint)
	assert.Equal(t, "sofia/gateway/carrier/05322222222", orig[1].Endpoint)
	for _, o := range orig {
		assert.Equal(t, "&park()", o.Target)
		assert.Equal(t, "908508850000", o.Vars["origination_caller_id_number"])
		assert.Equal(t, "25", o.Vars["originate_timeout"])
		assert.Equal(t, []string{"playback::http_cache://http://127.0.0.1:1/m.wav"}, o.Plays)
		assert.True(t, o.Killed, "kanca hangs up after the message")
		in := announcedAs(t, rg, o.UUID) // the leg carries the id the tracker was told of
		assert.Equal(t, cdr.KindOriginate, in.Kind)
	}
}

// Busy (USER_BUSY) is tried again after the delay, then given up; no
// answer (NO_ANSWER at originate_timeout) is told apart from busy.
func TestESLUnanswered(t *testing.T) {
	for _, tc := range []struct {
		callee   esltest.Callee
		retries  int
		outcome  string
		attempts int
	}{
		{esltest.Callee{Busy: true}, 1, "busy", 2},
		{esltest.Callee{NoAnswer: true}, 0, "no answer", 1},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			rg, fs := newESLRig(t, filepath.Join(t.TempDir(), "c.db"), func(string) esltest.Callee { return tc.callee })
			id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Text: "x", Retries: tc.retries, Delay: 1, Timeout: 8})
			rg.run(t)
			v := waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateUnanswered})
			assert.Equal(t, tc.attempts, v.Calls[0].Attempts)
			assert.Equal(t, tc.outcome, v.Calls[0].Outcome)
			orig := fs.Originated()
			assert.Len(t, orig, tc.attempts)
			for _, o := range orig {
				assert.Empty(t, o.Plays)
				assert.Equal(t, "8", o.Vars["originate_timeout"])
			}
		})
	}
}

// Click-to-call through FreeSWITCH: the answered leg runs the dialplan
// at the destination; kanca plays nothing and never kills it.
func TestESLClickToCall(t *testing.T) {
	rg, fs := newESLRig(t, filepath.Join(t.TempDir(), "c.db"), nil)
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321234567"}, Destination: "1000", Timeout: 20})
	rg.run(t)
	var o esltest.Originated
	deadline := time.Now().Add(10 * time.Second)
	for {
		if orig := fs.Originated(); len(orig) == 1 {
			o = orig[0]
			break
		}
		require.True(t, time.Now().Before(deadline), "no originate")
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, "1000", o.Target)
	assert.Equal(t, "from-internal", o.Context)
	time.Sleep(300 * time.Millisecond)
	require.True(t, fs.HangUpRemote(o.UUID), "kanca hung up a connected call")
	v := waitStates(t, rg.store, id, map[string]string{"905321234567": autodial.StateAnswered})
	assert.True(t, v.Calls[0].Answer)
	assert.Empty(t, fs.Originated()[0].Plays)
	assert.False(t, fs.Originated()[0].Killed)
}

// A call asked for while kanca is not connected to FreeSWITCH (starting,
// or FreeSWITCH away) waits for the connection: the PBX was not asked,
// so it is neither failed nor a try. (It was failed, "not connected to
// FreeSWITCH", when a loaded machine let the dialer start before the
// event socket's login was through.)
func TestESLCallWaitsForTheConnection(t *testing.T) {
	// An event socket that takes the connection and never says a word:
	// kanca never logs in.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	src, err := esl.New(esl.Config{Addr: ln.Addr().String(), Password: "ClueCon"})
	require.NoError(t, err)
	rg := newRunnerRig(t, filepath.Join(t.TempDir(), "c.db"), autodial.ESLDialer{Conn: src, Context: "from-internal"}, src.Run)
	rg.runner.Trunks = []autodial.Trunk{{Template: "sofia/gateway/carrier/{number}"}}
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Text: "x", Timeout: 8})
	rg.run(t)

	waitsQueued(t, rg, id)
}
