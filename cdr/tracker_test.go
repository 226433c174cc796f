package cdr

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// script builds tracker input the way a PBX source would, with a clock
// that advances 10 ms per event.
type script struct {
	t   *testing.T
	tr  *Tracker
	now time.Time
	out []Event
	ch  map[string]*Channel
}

func newScript(t *testing.T, cfg Config) *script {
	return &script{t: t, tr: NewTracker(cfg), now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), ch: map[string]*Channel{}}
}

func (s *script) feed(in Input) {
	s.now = s.now.Add(10 * time.Millisecond)
	if in.Time.IsZero() {
		in.Time = s.now
	}
	in.Server = "pbx1"
	s.out = append(s.out, s.tr.Handle(in)...)
}

func (s *script) create(id, name, state, caller, context, exten, linked string) {
	c := &Channel{ID: id, Name: name, State: state, CallerNumber: caller, Context: context, Exten: exten, LinkedID: linked}
	c.Created = s.now.Add(10 * time.Millisecond)
	s.ch[id] = c
	s.feed(Input{Kind: KindCreated, Channel: *c})
}

func (s *script) app(id, app, data string) {
	c := s.ch[id]
	c.App, c.AppData = app, data
	s.feed(Input{Kind: KindDialplan, Channel: *c})
}

func (s *script) goTo(id, context, exten string) {
	c := s.ch[id]
	c.Context, c.Exten = context, exten
}

func (s *script) state(id, state string) {
	c := s.ch[id]
	c.State = state
	s.feed(Input{Kind: KindState, Channel: *c})
}

// answeredCall is an inbound call from caller's leg to extension 1000 on
// callee's, answered.
func (s *script) answeredCall(caller, callee string) {
	s.create(caller, "PJSIP/trunk-1", "Ring", "05321234567", "from-trunk", "908508850000", "")
	s.app(caller, "Dial", "PJSIP/1000,20")
	s.create(callee, "PJSIP/1000-2", "Down", "1000", "from-internal", "s", "")
	s.dial(caller, callee, "")
	s.dial(caller, callee, "ANSWER")
	s.state(caller, "Up")
}

func (s *script) dial(caller, peer, status string) {
	s.feed(Input{Kind: KindDial, Channel: *s.ch[peer], Other: s.ch[caller], DialStatus: status})
}

func (s *script) hangup(id string, soft bool, cause int) {
	s.feed(Input{Kind: KindHangupRequest, Channel: *s.ch[id], Soft: soft, Cause: cause})
}

func (s *script) destroy(id string, cause int) {
	s.feed(Input{Kind: KindDestroyed, Channel: *s.ch[id], Cause: cause})
}

func (s *script) types() []EventType {
	var ts []EventType
	for _, e := range s.out {
		ts = append(ts, e.Type)
	}
	return ts
}

func (s *script) last(typ EventType) Event {
	for i := len(s.out) - 1; i >= 0; i-- {
		if s.out[i].Type == typ {
			return s.out[i]
		}
	}
	s.t.Fatalf("no %s in %v", typ, s.types())
	return Event{}
}

// consultationJoined checks a consultation's story after a gap: its
// answer was no step of the call, and joining the caller to it (joined,
// the transfer or the bridge) opens the step to 1001 then.
func (s *script) consultationJoined(joined Input) {
	s.t.Helper()
	assert.Equal(s.t, []EventType{CallInit, CallInitExtension}, s.types(), "the consultation's answer is not the call's")
	s.feed(joined)
	e := s.last(CallInitExtension)
	assert.Equal(s.t, "1001", e.Destination)
	assert.Equal(s.t, joined.Time, e.Time)
}

// A FreePBX ring group: the inbound route jumps to ext-group,600, which
// dials its members through Local channels. Without linkedid the legs are
// tied together by the Dial events and the Local pairs.
func TestFreePBXRingGroupThroughLocalChannels(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("1.0", "PJSIP/carrier-00000000", "Ring", "02161234567", "from-pstn", "908508850000", "")
	s.goTo("1.0", "ext-group", "600")
	s.app("1.0", "Set", "RingGroupMethod=ringall")
	s.app("1.0", "Dial", "Local/101@from-internal/n&Local/102@from-internal/n,20")
	for i, ext := range []string{"101", "102"} {
		one, two := "1."+string(rune('1'+2*i)), "1."+string(rune('2'+2*i))
		s.create(one, "Local/"+ext+"@from-internal-0000000"+ext[2:]+";1", "Down", "", "from-internal", ext, "")
		s.create(two, "Local/"+ext+"@from-internal-0000000"+ext[2:]+";2", "Ring", "", "from-internal", ext, "")
		s.dial("1.0", one, "")
		s.app(two, "Dial", "PJSIP/"+ext+",20") // the member's own Dial: no new step
	}
	s.state("1.3", "Up")
	s.dial("1.0", "1.3", "ANSWER")
	s.dial("1.0", "1.1", "CANCEL")
	s.destroy("1.1", 26)
	s.destroy("1.2", 26)
	s.state("1.0", "Up")
	s.hangup("1.0", false, 16)
	s.destroy("1.3", 16)
	s.destroy("1.4", 16)
	s.destroy("1.0", 16)

	assert.Equal(t, []EventType{CallInit, CallInitGroup, CallHangup}, s.types())
	g := s.last(CallInitGroup)
	assert.Equal(t, "600", g.Destination)
	h := s.last(CallHangup)
	assert.Equal(t, "908508850000", h.Number)
	assert.Equal(t, "902161234567", h.Caller)
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
	assert.Equal(t, "recv_bye", h.HangupDetail)
	require.Len(t, h.CDR.Callflow, 3)
	assert.Equal(t, RedirectedToGroup, h.CDR.Callflow[0].Redirection)
	assert.False(t, h.CDR.Callflow[1].Answer.IsZero(), "the group step is answered when a member answers")
	// The member who answered has the last step: the callflow names them.
	assert.Equal(t, Step{Callee: "600", Start: h.CDR.Callflow[1].Start, Answer: h.CDR.Callflow[2].Start, Hangup: h.CDR.Callflow[2].Start,
		Redirection: RedirectedToExtension, Target: "102"}, h.CDR.Callflow[1])
	assert.Equal(t, "102", h.CDR.Callflow[2].Callee)
	assert.Equal(t, ConnectingToExtension, h.CDR.Callflow[2].Redirection)
	assert.Equal(t, h.CDR.Callflow[2].Start, h.CDR.Callflow[2].Answer)
	assert.Zero(t, s.tr.Calls(), "the call is forgotten once it ended")
	assert.Empty(t, s.tr.legs)
	assert.Empty(t, s.tr.locals, "Local halves are forgotten with their legs")
}

// With CHANNEL(linkedid) in channelvars, legs join their call by it, even a
// leg the tracker never saw dialled.
func TestLinkedIDGroupsLegs(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("9.0", "PJSIP/trunk-1", "Ring", "05321234567", "from-trunk", "908508850000", "9.0")
	s.app("9.0", "Dial", "PJSIP/1000,20")
	s.create("9.1", "PJSIP/1000-2", "Down", "1000", "from-internal", "s", "9.0")
	s.state("9.1", "Up") // no Dial event at all: still the dialled leg? it is not marked dialled
	s.state("9.0", "Up")
	s.destroy("9.1", 16)
	assert.Equal(t, []EventType{CallInit, CallInitExtension}, s.types(), "the call lives while its caller's leg does")
	s.destroy("9.0", 16)
	h := s.last(CallHangup)
	assert.Equal(t, CallUUID("pbx1", "9.0"), h.CallID)
	assert.Equal(t, "send_bye", h.HangupDetail)
}

// A call whose channels vanished while kanca was not connected gets its
// hangup, marked as reconciled.
func TestGoneIsReconciled(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.answeredCall("2.0", "2.1")
	gap := s.now.Add(time.Minute)
	s.feed(Input{Kind: KindGone, Time: gap, Channel: Channel{ID: "2.1"}})
	s.feed(Input{Kind: KindGone, Time: gap, Channel: Channel{ID: "2.0"}})
	h := s.last(CallHangup)
	assert.True(t, h.CDR.Reconciled)
	assert.Equal(t, gap, h.CDR.HangupTime)
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
}

// A call that never ends is closed after the maximum call duration, and its
// memory is released.
func TestExpiry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxCallDuration = time.Hour
	s := newScript(t, cfg)
	s.create("3.0", "PJSIP/trunk-1", "Ring", "05321234567", "from-trunk", "908508850000", "")
	s.create("3.9", "PJSIP/1000-9", "Down", "1000", "from-internal", "s", "") // never claimed
	require.Equal(t, 1, s.tr.Calls())
	s.feed(Input{Kind: KindCreated, Time: s.now.Add(2 * time.Hour), Channel: Channel{ID: "4.0", Name: "PJSIP/1001-1", State: "Ring", CallerNumber: "1001", Context: "from-internal", Exten: "1002"}})
	h := s.last(CallHangup)
	assert.True(t, h.CDR.Expired)
	assert.Equal(t, 1, s.tr.Calls(), "only the new call is left")
	assert.NotContains(t, s.tr.legs, "3.0")
	assert.NotContains(t, s.tr.legs, "3.9")
	assert.Equal(t, []EventType{CallInit, CallHangup, MissingCall}, s.types())
}

// Two extensions calling each other cross no PBX number: nothing is sent.
func TestInternalCallIsSilent(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("5.0", "PJSIP/1000-1", "Ring", "1000", "from-internal", "1001", "")
	s.app("5.0", "Dial", "PJSIP/1001,20")
	s.create("5.1", "PJSIP/1001-2", "Down", "1001", "from-internal", "s", "")
	s.dial("5.0", "5.1", "")
	s.dial("5.0", "5.1", "ANSWER")
	s.destroy("5.1", 16)
	s.destroy("5.0", 16)
	assert.Empty(t, s.out)
	assert.Zero(t, s.tr.Calls())
}

// An inbound call forwarded to a mobile phone: REDIRECTED_TO_EXTERNAL, and
// a call answered outside is not missed.
func TestInboundForwardedOutside(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("6.0", "PJSIP/trunk-1", "Ring", "+49301234567", "from-trunk", "908508850000", "")
	s.app("6.0", "Dial", "PJSIP/1000,15")
	s.create("6.1", "PJSIP/1000-1", "Down", "1000", "from-internal", "s", "")
	s.dial("6.0", "6.1", "")
	s.dial("6.0", "6.1", "NOANSWER")
	s.destroy("6.1", 0)
	s.app("6.0", "Dial", "PJSIP/05321112233@trunk,30")
	s.create("6.2", "PJSIP/trunk-2", "Down", "", "from-trunk", "s", "")
	s.dial("6.0", "6.2", "")
	s.dial("6.0", "6.2", "ANSWER")
	s.state("6.0", "Up")
	s.hangup("6.2", false, 16)
	s.hangup("6.0", true, 16)
	s.destroy("6.2", 16)
	s.destroy("6.0", 16)
	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
	h := s.last(CallHangup)
	assert.Equal(t, "4930123456"+"7", h.Caller)
	assert.Equal(t, "send_bye", h.HangupDetail)
	assert.Equal(t, "NORMAL_CLEARING", h.HangupCause, "answered in the end: the early no-answer does not count")
	flow := h.CDR.Callflow
	require.Len(t, flow, 3)
	assert.Equal(t, RedirectedToExternal, flow[1].Redirection)
	assert.Equal(t, "905321112233", flow[1].Target)
	assert.Equal(t, ConnectingToExternal, flow[2].Redirection)
}

// FreePBX names: a numbered IVR context is a menu of that number, and a
// DID that only shows in a variable (an "s" extension) is still found.
func TestNumberedMenuAndDIDFromVariable(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("7.0", "PJSIP/trunk-1", "Ring", "anonymous", "from-pstn", "s", "")
	s.feed(Input{Kind: KindVar, Channel: *s.ch["7.0"], Var: "__FROM_DID", Value: "908508850001"})
	s.goTo("7.0", "ivr-3", "s")
	s.app("7.0", "Answer", "")
	s.state("7.0", "Up")
	s.app("7.0", "Background", "custom/welcome")
	s.hangup("7.0", false, 16)
	s.destroy("7.0", 16)
	assert.Equal(t, []EventType{CallInit, CallInitMenu, CallHangup, MissingCall}, s.types())
	assert.Equal(t, "3", s.last(CallInitMenu).Destination)
	h := s.last(CallHangup)
	assert.Equal(t, "908508850001", h.Number)
	assert.Equal(t, "anonymous", h.Caller)
	assert.False(t, h.CDR.AnswerTime.IsZero(), "a menu answering counts as an answer")
	assert.Empty(t, h.ResultDisposition, "...but not as a person")
	assert.Equal(t, "recv_bye", h.HangupDetail)
}

// Events of a call are numbered in the order they happened.
func TestSequence(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("8.0", "PJSIP/trunk-1", "Ring", "05321234567", "from-trunk", "908508850000", "")
	s.app("8.0", "Dial", "PJSIP/1000,20")
	s.hangup("8.0", false, 127)
	s.destroy("8.0", 127)
	for i, e := range s.out {
		assert.Equal(t, i+1, e.Seq)
	}
	assert.Equal(t, "ORIGINATOR_CANCEL", s.last(MissingCall).HangupCause)
}

func TestNormalize(t *testing.T) {
	n := newNumbers(90, 6)
	for in, want := range map[string]string{
		"05321234567":       "905321234567",
		"908508850000":      "908508850000",
		"+90 532 123 45 67": "905321234567",
		"004930123456":      "4930123456",
		"1000":              "1000",
		"anonymous":         "anonymous",
		"":                  "",
		"0850 885 00 00":    "908508850000",
		"sip:1000@pbx":      "sip:1000@pbx",
	} {
		assert.Equal(t, want, n.normalize(in), "normalize(%q)", in)
	}
	assert.Equal(t, "4930123456", newNumbers(49, 4).normalize("030123456"))
}

func TestParseDial(t *testing.T) {
	for _, tc := range []struct {
		app, data string
		want      []target
	}{
		{"dial", "PJSIP/1000,20", []target{{endpoint: "1000", number: "1000"}}},
		{"dial", "PJSIP/1001&PJSIP/1002,20", []target{{endpoint: "1001", number: "1001"}, {endpoint: "1002", number: "1002"}}},
		{"dial", "PJSIP/05321112233@trunk,30", []target{{endpoint: "trunk", number: "05321112233"}}},
		{"dial", "PJSIP/trunk/sip:05321112233@10.0.0.1,30", []target{{endpoint: "trunk", number: "05321112233"}}},
		{"dial", "SIP/carrier/05321112233", []target{{endpoint: "carrier", number: "05321112233"}}},
		{"dial", "Local/101@from-internal/n,20", []target{{endpoint: "", number: "101"}}},
		{"dial", "PJSIP/101/sip:101@192.0.2.5:5060,20", []target{{endpoint: "101", number: "101"}}},
		{"dial", "", nil},
		{"bridge", "sofia/internal/1000@127.0.0.1:5070", []target{{endpoint: "internal", number: "1000"}}},
		{"bridge", "{ignore_early_media=true}sofia/internal/1001@h,sofia/internal/1002@h", []target{{endpoint: "internal", number: "1001"}, {endpoint: "internal", number: "1002"}}},
		{"bridge", "sofia/gateway/carrier/905321112233", []target{{endpoint: "carrier", number: "905321112233"}}},
		{"bridge", "user/1000", []target{{endpoint: "", number: "1000"}}},
		{"bridge", "error/user_busy", nil},
		{"bridge", "group/sales@192.0.2.2", []target{{number: "sales", group: true}}},
		{"bridge", "user/1000@192.0.2.2,pickup/1000", []target{{number: "1000"}}},
		// Channel variables hold commas of their own.
		{"bridge", "{ignore_early_media=true,origination_caller_id_number=02121234567}sofia/gateway/carrier/05321112233", []target{{endpoint: "carrier", number: "05321112233"}}},
		{"bridge", "<a=1,b=2>{c=3,d=4}[leg_timeout=15,leg_delay_start=5]user/1001@d,[leg_timeout=15]user/1002@d|sofia/gateway/gw/05321112233", []target{{number: "1001"}, {number: "1002"}, {endpoint: "gw", number: "05321112233", failover: true}}},
		{"bridge", "loopback/app=voicemail:default 192.168.1.10 1000", []target{{app: "voicemail"}}},
		{"bridge", "loopback/05321112233", []target{{number: "05321112233"}}},
	} {
		assert.Equal(t, tc.want, parseDial(tc.app, tc.data), "%s(%s)", tc.app, tc.data)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte("country_code: 49\ncontexts:\n  inbound: [carrier-in]\nnames:\n  sales: \"600\"\nmax_call_duration: 2h\n"))
	require.NoError(t, err)
	assert.Equal(t, 49, c.CountryCode)
	assert.Equal(t, []string{"carrier-in"}, c.Contexts.Inbound)
	assert.Equal(t, DefaultConfig().Contexts.Menu, c.Contexts.Menu, "lists not given keep their defaults")
	assert.Equal(t, 2*time.Hour, c.MaxCallDuration)

	for _, bad := range []string{"countrycode: 49", "country_code: 0", "names: {sales: abc}", "contexts: {menu: ['[']}", "max_call_duration: soon", "extension_max_digits: 40"} {
		_, err := ParseConfig([]byte(bad))
		assert.Error(t, err, bad)
	}
	c, err = ParseConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultConfig().CountryCode, c.CountryCode)
}

func TestCallUUID(t *testing.T) {
	a := CallUUID("02:fc:00:00:00:01", "1795349289.0")
	assert.Equal(t, a, CallUUID("02:fc:00:00:00:01", "1795349289.0"), "stable across restarts")
	assert.NotEqual(t, a, CallUUID("02:fc:00:00:00:02", "1795349289.0"), "unique across servers")
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
}

func TestParseEventType(t *testing.T) {
	for in, want := range map[string]EventType{"call_init_manu": CallInitMenu, "incoming_call_group": CallInitGroup, " CALL_HANGUP ": CallHangup} {
		got, err := ParseEventType(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseEventType("call_end")
	assert.ErrorContains(t, err, "call_init_extension")
}

func TestSendName(t *testing.T) {
	assert.Equal(t, "call_init_menu", SendName("call_init_manu"), "the spec's typo is accepted, never sent")
	assert.Equal(t, "incoming_call_group", SendName(" Incoming_Call_Group"), "the later revision's spelling is sent as asked")
	assert.Equal(t, "call_hangup", SendName("call_hangup"))
}

// A call adopted mid-call from a channel list, answered and then gone
// while kanca was away again, says which fields it could only estimate;
// its callee's leg, listed up, makes it answered, not missed.
func TestAdoptedAndReconciledCallSaysWhatIsEstimated(t *testing.T) {
	s := newScript(t, DefaultConfig())
	at := s.now
	caller := Channel{ID: "a", Name: "PJSIP/trunk-1", State: "Up", CallerNumber: "05321234567", Context: "ext-local",
		Exten: "1000", App: "Dial", AppData: "PJSIP/1000,20", LinkedID: "a", Created: at.Add(-time.Minute),
		Vars: map[string]string{"DID": "908508850000"}}
	callee := Channel{ID: "b", Name: "PJSIP/1000-1", State: "Up", CallerNumber: "1000", Context: "from-internal",
		LinkedID: "a", Created: at.Add(-50 * time.Second)}
	s.feed(Input{Kind: KindCreated, Channel: caller, Adopted: true})
	s.feed(Input{Kind: KindCreated, Channel: callee, Adopted: true})
	s.feed(Input{Kind: KindGone, Channel: callee})
	s.feed(Input{Kind: KindGone, Channel: caller})

	var types []EventType
	var rec *Record
	for _, ev := range s.out {
		types = append(types, ev.Type)
		assert.Equal(t, "908508850000", ev.Callee, "the number it arrived on, not the extension it is at")
		if ev.CDR != nil {
			rec = ev.CDR
			assert.Equal(t, "SUCCESS", ev.ResultDisposition)
		}
	}
	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, types)
	require.NotNil(t, rec)
	assert.True(t, rec.Reconciled)
	assert.Equal(t, []string{"answer_time", "hangup_time", "talk_duration", "hangup_cause", "sip_hangup_disposition"}, rec.Estimated)
}

// An adopted leg's answer is an estimate when only a list showed it up;
// when the PBX says when it answered (FreeSWITCH's session, asked after
// a gap), it is that time, exact, and not named estimated.
func TestAnswerThePBXTimedIsNotEstimated(t *testing.T) {
	for _, tt := range []struct {
		name      string
		answered  time.Duration // before the list; 0: not said
		estimated bool
	}{
		{"listed up only", 0, true},
		{"answer time said", 40 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newScript(t, DefaultConfig())
			at := s.now
			caller := Channel{ID: "a", Name: "sofia/external/05321234567", State: "Up", CallerNumber: "05321234567", Context: "public",
				Exten: "908508850000", LinkedID: "a", Created: at.Add(-time.Minute)}
			callee := Channel{ID: "b", Name: "sofia/internal/1000", State: "Up", LinkedID: "a", DialedNumber: "1000", Created: at.Add(-50 * time.Second)}
			if tt.answered > 0 {
				caller.Answered = at.Add(-tt.answered)
				callee.Answered = at.Add(-tt.answered)
			}
			s.feed(Input{Kind: KindCreated, Channel: caller, Adopted: true})
			s.feed(Input{Kind: KindCreated, Channel: callee, Adopted: true})
			s.feed(Input{Kind: KindDestroyed, Channel: callee})
			s.feed(Input{Kind: KindDestroyed, Channel: caller})
			var rec *Record
			for _, ev := range s.out {
				if ev.CDR != nil {
					rec = ev.CDR
				}
			}
			require.NotNil(t, rec)
			assert.Equal(t, tt.estimated, slices.Contains(rec.Estimated, "answer_time"), "estimated %v", rec.Estimated)
			if tt.answered > 0 {
				assert.Equal(t, at.Add(-tt.answered), rec.AnswerTime)
			}
		})
	}
}

// What a caller a list finds running began in the gap and no later event
// says: a fax (its fax_init placed at the leg's answer) or a recording,
// whether the list adopts the call or the books began it and the list
// finds it there (Asterisk's CEL has no row for ReceiveFAX or Record,
// and ReceiveFAX sends no event when it ends).
func TestWhatAListFindsACallerRunningIsTold(t *testing.T) {
	for _, tt := range []struct {
		app, data string
		recording string // the file the PBX says it records the leg to
		types     []EventType
		callType  string
		record    string
	}{
		{"ReceiveFAX", "/var/spool/asterisk/fax/a.tif", "", []EventType{CallInit, FaxInit, CallHangup}, "fax", ""},
		{"Record", "/var/spool/asterisk/msg/a.wav,5", "", []EventType{CallInit, CallHangup, MissingCall}, "voice", "/var/spool/asterisk/msg/a.wav"},
		// FreeSWITCH's g06: record_session ran in the gap, the caller now
		// runs another application; its media bug names the file.
		{"sleep", "5000", "/var/lib/freeswitch/recordings/a.wav", []EventType{CallInit, CallHangup, MissingCall}, "voice", "/var/lib/freeswitch/recordings/a.wav"},
	} {
		for _, books := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s books %v", tt.app, books), func(t *testing.T) {
				s := newScript(t, DefaultConfig())
				answered := s.now.Add(-4 * time.Second)
				caller := Channel{ID: "a", Name: "PJSIP/trunk-1", State: "Up", CallerNumber: "02121234567", Context: "from-trunk",
					Exten: "908508850009", LinkedID: "a", Created: answered.Add(-time.Millisecond), Answered: answered}
				if books {
					ringing := caller
					ringing.State, ringing.Answered = "Ring", time.Time{}
					s.feed(Input{Kind: KindCreated, Time: ringing.Created, Channel: ringing, Books: true})
					s.feed(Input{Kind: KindState, Time: answered, Channel: caller, Books: true})
				}
				caller.App, caller.AppData, caller.Recording = tt.app, tt.data, tt.recording
				s.feed(Input{Kind: KindCreated, Channel: caller, Adopted: true})
				s.feed(Input{Kind: KindDestroyed, Channel: caller, CauseName: "NORMAL_CLEARING"})

				var types []EventType
				var rec *Record
				for _, ev := range s.out {
					types = append(types, ev.Type)
					if ev.Type == FaxInit {
						assert.Equal(t, answered, ev.Time, "placed at the answer")
					}
					if ev.CDR != nil {
						rec = ev.CDR
					}
				}
				assert.Equal(t, tt.types, types)
				require.NotNil(t, rec)
				assert.Equal(t, tt.callType, rec.CallType)
				assert.Equal(t, tt.record != "", rec.Recorded)
				assert.Equal(t, tt.record, rec.RecordFile)
			})
		}
	}
}

// A caller found gone after a gap ended no earlier than the last thing
// the books told of its call: the moment the connection dropped is only
// where its end can begin (an attended transfer the books told in the
// gap, the caller's end row not written yet when they were read).
func TestGoneCallEndsNoEarlierThanTheBooksHeardIt(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.answeredCall("a", "b")
	dropped := s.now
	told := dropped.Add(10 * time.Second)
	s.feed(Input{Kind: KindDestroyed, Time: told.Add(-time.Second), Channel: *s.ch["b"], CauseName: "NORMAL_CLEARING", Books: true})
	s.feed(Input{Kind: KindBridgeLeave, Time: told, Channel: *s.ch["a"], Bridge: "br", Books: true})
	s.feed(Input{Kind: KindGone, Time: dropped, Channel: *s.ch["a"]})
	h := s.last(CallHangup)
	assert.Equal(t, told, h.Time)
	assert.Equal(t, told, h.CDR.HangupTime)
	assert.Contains(t, h.CDR.Estimated, "hangup_time")
}

// A followed caller a queue handed to an agent while kanca was away runs
// no queue application when kanca is back: the move the list shows is
// the agent's bridge, and the queue the PBX keeps on the caller's
// session (Channel.Queue) is the group step the call took, once.
func TestMoveFromAQueueTheGapHidIsTheGroupStep(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("a", "sofia/internal/905321234567@carrier", "Ring", "905321234567", "public", "908508850003", "a")
	s.app("a", "answer", "")
	s.state("a", "Up")
	joined := s.now.Add(time.Second)
	moved := *s.ch["a"]
	moved.App, moved.AppData, moved.Queue, moved.Queued = "uuid_bridge", "b", "support", joined.Truncate(time.Second)
	s.feed(Input{Kind: KindDialplan, Time: joined.Add(2 * time.Second), Channel: moved, Adopted: true})
	s.feed(Input{Kind: KindDialplan, Time: joined.Add(3 * time.Second), Channel: moved, Adopted: true})
	require.Equal(t, []EventType{CallInit, CallInitGroup}, s.types())
	g := s.last(CallInitGroup)
	assert.Equal(t, "support", g.Destination)
	assert.Equal(t, joined.Truncate(time.Second), g.Time, "when the PBX says the caller joined the queue")
}

// A list after a gap shows the callee that took the call bridged with a
// channel of its own consultation (Asterisk's Local channel that an
// attended transfer's feature code made): that channel answering is no
// forward of the callee's step; the step to whom it reached begins when
// the transfer joins the caller to it, as the live events would say.
func TestConsultationFoundInAListIsNoStepUntilTheTransfer(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.answeredCall("a", "b")
	local := Channel{ID: "c", Name: "Local/1001@from-internal-00000002;1", State: "Ringing", LinkedID: "a", Created: s.now}
	s.feed(Input{Kind: KindCreated, Channel: local, Adopted: true})
	s.feed(Input{Kind: KindBridgeEnter, Channel: *s.ch["b"], Bridge: "consult", Other: &local, Adopted: true})
	s.feed(Input{Kind: KindBridgeEnter, Channel: local, Bridge: "consult", Other: s.ch["b"], Adopted: true})
	local.State = "Up"
	s.feed(Input{Kind: KindState, Channel: local, Resumed: true})
	s.consultationJoined(Input{Kind: KindTransfer, Time: s.now.Add(4 * time.Second), Channel: *s.ch["a"], Other: &local})
}

// The consultation kanca heard begin before a gap (Asterisk's t01: the
// callee's atxfer originates Local/1001;1, whose Dial names no caller,
// into a bridge with the callee) and a list then joins to the call by
// its linked id, answered in the gap: it is still the callee's
// consultation, no step until the transfer.
func TestConsultationHeardBeforeAGapIsNoStepUntilTheTransfer(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.answeredCall("a", "b")
	s.feed(Input{Kind: KindBridgeEnter, Channel: *s.ch["b"], Bridge: "call"})
	s.feed(Input{Kind: KindBridgeEnter, Channel: *s.ch["a"], Bridge: "call"})
	s.create("c", "Local/1001@from-internal-00000002;1", "Down", "", "from-internal", "1001", "")
	s.feed(Input{Kind: KindBridgeEnter, Channel: *s.ch["c"], Bridge: "consult"})
	s.feed(Input{Kind: KindBridgeLeave, Channel: *s.ch["b"], Bridge: "call"})
	s.feed(Input{Kind: KindBridgeEnter, Channel: *s.ch["b"], Bridge: "consult"})
	s.feed(Input{Kind: KindDial, Channel: *s.ch["c"], DialStatus: "RINGING"})

	// The gap: the consultation answered; the list names its call.
	local := *s.ch["c"]
	local.State, local.LinkedID = "Up", "a"
	s.feed(Input{Kind: KindState, Time: s.now.Add(2 * time.Second), Channel: local, Books: true})
	s.feed(Input{Kind: KindState, Time: s.now.Add(5 * time.Second), Channel: local, Adopted: true})
	s.consultationJoined(Input{Kind: KindTransfer, Time: s.now.Add(6 * time.Second), Channel: *s.ch["a"], Other: &local})
}

// The same on FreeSWITCH: the consultation leg a list shows names, in its
// session, the callee that originated it (DialedBy); its answer is no
// forward, and its step begins when the transfer bridges the caller to
// it. So too when the transferer's leg ended before the list's adoption
// of the consultation reached the tracker (g01: the list is held until
// the consultation's next event, after 1000 hung up to complete the
// transfer).
func TestConsultationTheSessionNamesIsNoStepUntilTheBridge(t *testing.T) {
	for _, calleeEnded := range []bool{false, true} {
		t.Run(fmt.Sprint("callee ended: ", calleeEnded), func(t *testing.T) {
			s := newScript(t, DefaultConfig())
			s.answeredCall("a", "b")
			answered := s.now.Add(time.Second)
			if calleeEnded {
				s.hangup("b", false, 16)
				s.destroy("b", 16)
			}
			consult := Channel{ID: "c", Name: "sofia/internal/1001@127.0.0.1", State: "Up", LinkedID: "a", DialedNumber: "1001",
				DialedBy: "b", Created: s.now, Answered: answered}
			s.feed(Input{Kind: KindCreated, Time: answered.Add(time.Second), Channel: consult, Adopted: true})
			s.consultationJoined(Input{Kind: KindBridgeEnter, Time: s.now.Add(4 * time.Second), Channel: consult, Bridge: "x", Other: s.ch["a"]})
		})
	}
}
