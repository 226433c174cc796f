package autodial_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/cdr"
)

var nums = autodial.Numbers{Country: "90", Premium: autodial.DefaultPremium}

func testKey() autodial.Key {
	return autodial.Key{Name: "ops", Allow: []string{"90"}, DailyBudget: 100, RatePerMinute: 100, From: []string{"908508850000"}}
}

// rig is a runner on a fake Asterisk, fed by a real ARI source.
type rig struct {
	ast      *aritest.Server
	store    *autodial.Store
	runner   *autodial.Runner
	announce chan cdr.Input
}

func newRig(t *testing.T, path string, callee func(string) aritest.Callee) *rig {
	t.Helper()
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	if callee != nil {
		ast.OnOriginate(callee)
	}
	src, err := ari.New(ari.Config{URL: ast.URL, User: "kanca", Password: "kanca"})
	require.NoError(t, err)
	rg := newRunnerRig(t, path, autodial.ARIDialer{Client: src.Client(), App: "kanca", Context: "from-internal"}, src.Run)
	rg.runner.Trunks = []autodial.Trunk{{Template: "PJSIP/{number}@carrier"}}
	rg.ast = ast
	return rg
}

// newRunnerRig is a runner placing calls through dialer, fed by a PBX
// source's run.
func newRunnerRig(t *testing.T, path string, dialer autodial.Dialer, run func(context.Context, func(cdr.Input)) error) *rig {
	t.Helper()
	store, err := autodial.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	rg := &rig{store: store, announce: make(chan cdr.Input, 100)}
	rg.runner = &autodial.Runner{
		Store:  store,
		Dialer: dialer,
		Announce: func(in cdr.Input) error {
			rg.announce <- in
			return nil
		},
		Speak: func(context.Context, string, string) (string, time.Duration, error) {
			return "http://127.0.0.1:1/m.wav", 50 * time.Millisecond, nil
		},
		Numbers: nums, Poll: 20 * time.Millisecond, GatherWait: 300 * time.Millisecond, Location: time.UTC,
	}
	ctx, cancel := context.WithCancel(context.Background())
	srcDone := make(chan struct{})
	go func() {
		defer close(srcDone)
		_ = run(ctx, rg.runner.Observe)
	}()
	t.Cleanup(func() { cancel(); <-srcDone })
	return rg
}

func (rg *rig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rg.runner.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
}

func waitStates(t *testing.T, s *autodial.Store, id int64, want map[string]string) autodial.RequestView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := s.Request(context.Background(), "", id)
		require.NoError(t, err)
		got := map[string]string{}
		for _, c := range v.Calls {
			got[c.Number] = c.State
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("states %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func enqueue(t *testing.T, s *autodial.Store, r autodial.Request) int64 {
	t.Helper()
	k := testKey()
	require.NoError(t, r.Normalize(k, nums.Premium))
	now := time.Now()
	tk, err := s.Enqueue(context.Background(), k, "api", "test", r, now, now.Format(time.DateOnly))
	require.NoError(t, err)
	return tk.ID
}

// Escalation: the numbers are called one after another until one
// acknowledges with a key; the rest are not called.
func TestEscalationUntilAcknowledged(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), func(ep string) aritest.Callee {
		if strings.Contains(ep, "05322222222") {
			return aritest.Callee{Digit: "1"}
		}
		return aritest.Callee{} // answers, presses nothing
	})
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111", "905322222222", "905323333333"},
		Text: "disk dolu", Gather: true, Escalate: true})
	rg.run(t)
	v := waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateAnswered,
		"905322222222": autodial.StateAcked, "905323333333": autodial.StateSkipped})
	assert.Equal(t, "1", v.Calls[1].Gather)
	orig := rg.ast.Originated()
	require.Len(t, orig, 2)
	assert.Equal(t, "PJSIP/05321111111@carrier", orig[0].Query["endpoint"])
	assert.Equal(t, "PJSIP/05322222222@carrier", orig[1].Query["endpoint"])
	for _, o := range orig {
		assert.Equal(t, []string{"sound:http://127.0.0.1:1/m.wav"}, o.Plays)
		assert.True(t, o.HungUp)
	}
	// The tracker heard of each channel before Asterisk was asked.
	for _, o := range orig {
		in := announcedAs(t, rg, o.ChannelID)
		assert.Equal(t, cdr.KindOriginate, in.Kind)
		assert.Equal(t, "+908508850000", in.Origin.Number, "international, with its +")
	}
}

// announcedAs reads the runner's announcements, in order, up to the one
// of channel: those before it are of tries the PBX was never asked (kanca
// not yet connected to it), whose channels it never created.
func announcedAs(t *testing.T, rg *rig, channel string) cdr.Input {
	t.Helper()
	for {
		select {
		case in := <-rg.announce:
			if in.Channel.ID == channel {
				return in
			}
			t.Logf("announced and never asked of the PBX: %s", in.Channel.ID)
		case <-time.After(10 * time.Second):
			t.Fatalf("channel %s was never announced", channel)
		}
	}
}

// Busy is tried again after the delay, then given up.
func TestRetryOnBusy(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), func(string) aritest.Callee { return aritest.Callee{Busy: true} })
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Text: "x", Retries: 1, Delay: 1})
	rg.run(t)
	v := waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateUnanswered})
	assert.Equal(t, 2, v.Calls[0].Attempts)
	assert.Equal(t, "busy", v.Calls[0].Outcome)
	assert.Len(t, rg.ast.Originated(), 2)
}

func TestNoAnswer(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), func(string) aritest.Callee { return aritest.Callee{NoAnswer: true} })
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Text: "x", Timeout: 8})
	rg.run(t)
	v := waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateUnanswered})
	assert.Equal(t, "no answer", v.Calls[0].Outcome)
	assert.Equal(t, "8", rg.ast.Originated()[0].Query["timeout"])
}

// A call outside its window waits for the window's opening.
func TestCallingWindowDefers(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), nil)
	var w autodial.Window
	// Open only on a day other than today, all day.
	w.Days[(time.Now().UTC().Weekday()+3)%7] = autodial.Day{Active: true}
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Text: "x", Window: &w})
	rg.run(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := rg.store.Request(context.Background(), "", id)
		require.NoError(t, err)
		if strings.HasPrefix(v.Calls[0].Outcome, "waiting for the calling window") {
			assert.Equal(t, "queued", v.Calls[0].State)
			break
		}
		require.True(t, time.Now().Before(deadline), "call not deferred: %+v", v.Calls[0])
		time.Sleep(10 * time.Millisecond)
	}
	assert.Empty(t, rg.ast.Originated())
}

const childEnv = "KANCA_AUTODIAL_CHILD"

// TestMain lets a test run this binary as a process to kill -9.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		child(path)
		return
	}
	os.Exit(m.Run())
}

// child stores a request, says so as the HTTP 200 would, optionally claims
// its call as the runner does before asking the PBX, and waits to be
// killed.
func child(path string) {
	s, err := autodial.Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	k := testKey()
	r := autodial.Request{Numbers: []string{"905321111111"}, Text: "x"}
	if err := r.Normalize(k, nums.Premium); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	now := time.Now()
	if _, err := s.Enqueue(context.Background(), k, "api", "child", r, now, now.Format(time.DateOnly)); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if os.Getenv(childEnv+"_CLAIM") != "" {
		if err := autodial.ClaimForTest(s, now); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	fmt.Println("200")
	select {}
}

func killedAfter200(t *testing.T, path string, claim bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	if claim {
		cmd.Env = append(cmd.Env, childEnv+"_CLAIM=1")
	}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	require.Equal(t, "200\n", string(buf[:n]))
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
}

// kill -9 right after the 200: the call is still placed, once.
func TestKilledAfterAnswerStillCalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	killedAfter200(t, path, false)
	rg := newRig(t, path, nil)
	rg.run(t)
	waitStates(t, rg.store, 1, map[string]string{"905321111111": autodial.StateAnswered})
	assert.Len(t, rg.ast.Originated(), 1)
}

// kill -9 while a call was being placed: the PBX may have rung the
// person, so the call is not placed again.
func TestKilledWhileDialingDoesNotCallTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	killedAfter200(t, path, true)
	rg := newRig(t, path, nil)
	rg.run(t)
	v := waitStates(t, rg.store, 1, map[string]string{"905321111111": autodial.StateInterrupted})
	assert.Contains(t, v.Calls[0].Outcome, "not placed again")
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, rg.ast.Originated())
}

// Click-to-call: the answered call runs the dialplan at the destination;
// kanca plays nothing, never hangs up, and records the answer when the
// call ends.
func TestClickToCall(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), nil)
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321234567"}, Destination: "1000", Timeout: 20})
	rg.run(t)
	var o aritest.Originated
	deadline := time.Now().Add(10 * time.Second)
	for {
		if orig := rg.ast.Originated(); len(orig) == 1 {
			o = orig[0]
			break
		}
		require.True(t, time.Now().Before(deadline), "no originate")
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, "from-internal", o.Query["context"])
	assert.Equal(t, "1000", o.Query["extension"])
	assert.Equal(t, "1", o.Query["priority"])
	assert.Empty(t, o.Query["app"], "runs dialplan, not kanca's application")
	// Long enough for the answer to be seen; kanca must not end the call.
	time.Sleep(300 * time.Millisecond)
	require.True(t, rg.ast.HangUpRemote(o.ChannelID), "kanca hung up a bridged call")
	v := waitStates(t, rg.store, id, map[string]string{"905321234567": autodial.StateAnswered})
	assert.Empty(t, rg.ast.Originated()[0].Plays)
	assert.True(t, v.Calls[0].Answer)
}

// A call asked for while Asterisk is down (nothing listens on its port)
// waits for it: the PBX was not asked, so it is neither failed nor a try.
func TestCallWaitsWhileAsteriskIsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	src, err := ari.New(ari.Config{URL: url, User: "kanca", Password: "kanca"})
	require.NoError(t, err)
	rg := newRunnerRig(t, filepath.Join(t.TempDir(), "c.db"), autodial.ARIDialer{Client: src.Client(), App: "kanca", Context: "from-internal"}, src.Run)
	rg.runner.Trunks = []autodial.Trunk{{Template: "PJSIP/{number}@carrier"}}
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Text: "x", Timeout: 8})
	rg.run(t)
	waitsQueued(t, rg, id)
}

// waitsQueued: the dialer comes back to the request's call, again and
// again (it was not given up), and between tries the call waits queued,
// the tries not counted.
func waitsQueued(t *testing.T, rg *rig, id int64) {
	t.Helper()
	for range 2 {
		select {
		case <-rg.announce:
		case <-time.After(30 * time.Second):
			v, _ := rg.store.Request(context.Background(), "", id)
			t.Fatalf("the call was not tried again: %+v", v.Calls)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := rg.store.Request(context.Background(), "", id)
		require.NoError(t, err)
		if c := v.Calls[0]; c.State == "queued" {
			assert.Zero(t, c.Attempts)
			assert.Contains(t, c.Outcome, "not placed yet")
			return
		}
		require.True(t, time.Now().Before(deadline), "the call never waited queued: %+v", v.Calls[0])
		time.Sleep(5 * time.Millisecond)
	}
}

// A call abroad is told to the tracker as the number it is: the webhooks
// name +44 7700 900123 as 447700900123, not as a number at home.
func TestCallAbroadIsToldAsItsNumber(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), func(string) aritest.Callee { return aritest.Callee{} })
	k := testKey()
	k.Allow = []string{"90", "44"}
	r := autodial.Request{Numbers: []string{"447700900123"}, Text: "disk dolu"}
	require.NoError(t, r.Normalize(k, nums.Premium))
	now := time.Now()
	tk, err := rg.store.Enqueue(context.Background(), k, "api", "test", r, now, now.Format(time.DateOnly))
	require.NoError(t, err)
	rg.run(t)
	waitStates(t, rg.store, tk.ID, map[string]string{"447700900123": autodial.StateAnswered})
	orig := rg.ast.Originated()
	require.Len(t, orig, 1)
	assert.Equal(t, "PJSIP/00447700900123@carrier", orig[0].Query["endpoint"])

	tr := cdr.NewTracker(cdr.DefaultConfig())
	in := announcedAs(t, rg, orig[0].ChannelID)
	tr.Handle(in)
	evs := tr.Handle(cdr.Input{Kind: cdr.KindCreated, Time: in.Time, Channel: cdr.Channel{ID: in.Channel.ID,
		Name: "PJSIP/carrier-00000001", State: "Down", Created: in.Time, Exten: "s", Context: "from-internal"}})
	require.NotEmpty(t, evs)
	assert.Equal(t, cdr.CallInit, evs[0].Type)
	assert.Equal(t, "447700900123", evs[0].Callee)
	assert.Equal(t, "908508850000", evs[0].Number)
}

// A sound of unknown length (a PBX recording, a URL) holds the line only
// until Asterisk says it finished (PlaybackFinished), each time it is
// repeated, not for SoundWait: here ten minutes, which the test would
// never see the end of.
func TestSoundEndsWhenThePBXSaysItFinished(t *testing.T) {
	ast := aritest.NewServer(aritest.Options{PlaybackLength: 100 * time.Millisecond})
	t.Cleanup(ast.Close)
	ast.OnOriginate(func(string) aritest.Callee { return aritest.Callee{} })
	src, err := ari.New(ari.Config{URL: ast.URL, User: "kanca", Password: "kanca"})
	require.NoError(t, err)
	rg := newRunnerRig(t, filepath.Join(t.TempDir(), "c.db"), autodial.ARIDialer{Client: src.Client(), App: "kanca", Context: "from-internal"}, src.Run)
	rg.runner.Trunks = []autodial.Trunk{{Template: "PJSIP/{number}@carrier"}}
	rg.runner.SoundWait = 10 * time.Minute
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111"}, Sound: "custom/alert", Repeat: 2})
	rg.run(t)
	waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateAnswered})
	orig := ast.Originated()
	require.Len(t, orig, 1)
	assert.Equal(t, []string{"sound:custom/alert", "sound:custom/alert"}, orig[0].Plays)
	assert.True(t, orig[0].HungUp, "kanca hung up once both had played")
}
