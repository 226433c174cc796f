package cdr

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Shapes of FreeSWITCH's stock dialplan (conf/vanilla/dialplan) and of
// FusionPBX's, read from their sources: no recording shows them yet.

// fsInbound starts a call from outside to 908508850000 that the public
// context sends on to ext in ctx, as public.xml's transfer does.
func fsInbound(t *testing.T, ctx, ext string) *script {
	s := newScript(t, DefaultConfig())
	s.create("c", "sofia/external/905321234567@203.0.113.5", "Ring", "905321234567", "public", "908508850000", "c")
	s.app("c", "transfer", ext+" XML "+ctx)
	s.goTo("c", ctx, ext)
	return s
}

// unanswered rings extension ext from the caller, who is not answered.
func (s *script) unanswered(ext string) {
	s.app("c", "bridge", "user/"+ext+"@192.168.1.10")
	s.create("a", "sofia/internal/sip:"+ext+"@192.168.1.50:5060", "Down", "905321234567", "default", ext, "c")
	s.dialString("c", "a", "", ext, "")
	s.dialString("c", "a", "NOANSWER", ext, "")
	s.destroy("a", 19)
}

// answeredBy has leg id, named name, dialled by the caller for number,
// answer, and be bridged to the caller.
func (s *script) answeredBy(id, name, number string) {
	s.create(id, name, "Down", "905321234567", s.ch["c"].Context, number, "c")
	s.dialString("c", id, "", number, "")
	s.state(id, "Up")
	s.state("c", "Up")
	s.bridge("c", "c", id)
}

// endCaller hangs the caller up and destroys the legs named.
func (s *script) endCaller(legs ...string) {
	s.hangup("c", false, 16)
	for _, id := range legs {
		s.destroy(id, 16)
	}
	s.destroy("c", 16)
}

// The stock Local_Extension sends a call 1000 did not answer to
// voicemail through loopback/app=voicemail:ARGS (mod_loopback: an A leg
// "loopback/voicemail-a" the caller bridges to, and a B leg
// "loopback/voicemail-b" that runs voicemail, linked to the A leg by
// other_loopback_leg_uuid). It is the voicemail step a call running
// voicemail itself has: no routing event, and a missed call, not one a
// person answered.
func TestStockVoicemailThroughLoopbackIsVoicemail(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.unanswered("1000")
	s.app("c", "answer", "")
	s.state("c", "Up")
	s.app("c", "sleep", "1000")
	s.app("c", "bridge", "loopback/app=voicemail:default 192.168.1.10 1000")
	s.create("la", "loopback/voicemail-a", "Down", "905321234567", "default", "voicemail", "c")
	s.dialString("c", "la", "", "voicemail", "")
	s.create("lb", "loopback/voicemail-b", "Ring", "905321234567", "default", "voicemail", "la")
	s.app("lb", "voicemail", "default 192.168.1.10 1000")
	s.state("lb", "Up")
	s.state("la", "Up")
	s.bridge("c", "c", "la")
	s.endCaller("la", "lb")

	sameAsVoicemail(t, s, "default")
}

// sameAsVoicemail holds s to a call to 1000 in ctx that 1000 did not
// answer and that then ran the voicemail application itself.
func sameAsVoicemail(t *testing.T, s *script, ctx string) {
	t.Helper()
	direct := fsInbound(t, ctx, "1000")
	direct.unanswered("1000")
	direct.app("c", "answer", "")
	direct.state("c", "Up")
	direct.app("c", "voicemail", "default 192.168.1.10 1000")
	direct.endCaller()

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup, MissingCall}, direct.types())
	assert.Equal(t, direct.types(), s.types())
	h, want := s.last(CallHangup), direct.last(CallHangup)
	assert.Equal(t, flowOf(want), flowOf(h))
	assert.Equal(t, want.ResultDisposition, h.ResultDisposition)
	assert.Equal(t, want.CDR.AnswerTime.IsZero(), h.CDR.AnswerTime.IsZero())
}

// FusionPBX's voicemail is a Lua script (lua app.lua voicemail, after
// the failure handler), never the voicemail application.
func TestFusionPBXVoicemailInLuaIsVoicemail(t *testing.T) {
	s := fsInbound(t, "pbx.example.com", "1000")
	s.unanswered("1000")
	s.app("c", "lua", "app.lua failure_handler")
	s.app("c", "lua", "app.lua voicemail")
	s.state("c", "Up")
	s.endCaller()

	sameAsVoicemail(t, s, "pbx.example.com")
}

// FusionPBX names its IVR menus by their uuid (ivr <ivr_menu_uuid>, and
// menu::enter's Menu-Name): callers know a menu by the number that runs
// it, as Bulutfon's menu numbers are.
func TestMenuNamedByAUUIDIsTheNumberItRunsOn(t *testing.T) {
	s := fsInbound(t, "pbx.example.com", "5000")
	s.app("c", "answer", "")
	s.state("c", "Up")
	const id = "8f2b1c3e-5d6a-4b7c-9e0f-1a2b3c4d5e6f"
	s.feed(Input{Kind: KindMenu, Channel: *s.ch["c"], Detail: id})
	s.feed(Input{Kind: KindMenu, Channel: *s.ch["c"], Detail: id}) // menu::enter after the ivr application
	s.endCaller()

	assert.Equal(t, []EventType{CallInit, CallInitMenu, CallHangup, MissingCall}, s.types())
	assert.Equal(t, "5000", s.last(CallInitMenu).Destination)

	named := DefaultConfig()
	named.Names = map[string]string{id: "7"}
	s = newScript(t, named)
	s.create("c", "sofia/external/905321234567@203.0.113.5", "Ring", "905321234567", "public", "908508850000", "c")
	s.goTo("c", "pbx.example.com", "5000")
	s.feed(Input{Kind: KindMenu, Channel: *s.ch["c"], Detail: id})
	assert.Equal(t, "7", s.last(CallInitMenu).Destination, "a name the admin gave wins")
}

// A bridge to every contact of one user (${sofia_contact(1000@d)} with a
// desk phone and a softphone registered) rings one extension, not a group.
func TestBridgeToTheContactsOfOneUserIsTheExtension(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "sofia/internal/sip:1000@192.168.1.50:5060,sofia/internal/sip:1000@192.168.1.77:50123;transport=tcp")
	s.answeredBy("a", "sofia/internal/sip:1000@192.168.1.50:5060", "1000")
	s.endCaller("a")

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 CONNECTING_TO_EXTENSION/"}, flowOf(s.last(CallHangup)))
}

// A FusionPBX ring group with a mobile among its members rings the
// members and loopback/NUMBER at once (ring_groups/index.lua). It is the
// ring group, and the member who answers is named, not the mobile; the
// loopback's B leg, which dials the mobile through a gateway, is part of
// the call, not a call of its own.
func TestRingGroupWithAMobileMemberIsTheGroup(t *testing.T) {
	s := fsInbound(t, "pbx.example.com", "2000")
	s.app("c", "lua", "app.lua ring_groups")
	s.app("c", "bridge", "{ignore_early_media=true}[leg_timeout=30,dialed_extension=1001]sofia/internal/sip:1001@192.168.1.51:5060,[toll_allow=,leg_timeout=30]loopback/05321112233")
	s.create("a", "sofia/internal/sip:1001@192.168.1.51:5060", "Down", "905321234567", "pbx.example.com", "1001", "c")
	s.dialString("c", "a", "", "1001", "")
	s.create("la", "loopback/05321112233-a", "Down", "905321234567", "pbx.example.com", "05321112233", "c")
	s.dialString("c", "la", "", "05321112233", "")
	s.create("lb", "loopback/05321112233-b", "Ring", "905321234567", "pbx.example.com", "05321112233", "la")
	s.app("lb", "bridge", "sofia/gateway/7d1c1e2e-0000-4000-8000-000000000001/05321112233")
	s.create("g", "sofia/external/05321112233", "Down", "905321234567", "pbx.example.com", "05321112233", "lb")
	s.dialString("lb", "g", "", "05321112233", "")
	s.state("a", "Up")
	s.state("c", "Up")
	s.dialString("c", "la", "CANCEL", "05321112233", "")
	s.destroy("g", 26)
	s.destroy("lb", 26)
	s.destroy("la", 26)
	s.bridge("c", "c", "a")
	s.endCaller("a")

	assert.Equal(t, []EventType{CallInit, CallInitGroup, CallHangup}, s.types())
	assert.Equal(t, "2000", s.last(CallInitGroup).Destination)
	h := s.last(CallHangup)
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_GROUP/2000", "2000 REDIRECTED_TO_EXTENSION/1001", "1001 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.Equal(t, 1, len(s.calls()), "the loopback's B leg is no call of its own")
}

// A failover from an extension to a mobile (user/1000|sofia/gateway/...)
// rings the extension first: it is 1000's call while 1000 rings, and the
// mobile's only if the call fails over to it.
func TestFailoverFromAnExtensionToAMobileIsTheExtensionFirst(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "[leg_timeout=20]user/1000@192.168.1.10|sofia/gateway/carrier/05321112233")
	s.create("a", "sofia/internal/sip:1000@192.168.1.50:5060", "Down", "905321234567", "default", "1000", "c")
	s.dialString("c", "a", "", "1000", "")
	s.dialString("c", "a", "NOANSWER", "1000", "")
	s.destroy("a", 19)
	s.answeredBy("g", "sofia/external/05321112233", "05321112233")
	s.endCaller("g")

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, "1000", s.last(CallInitExtension).Destination)
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 REDIRECTED_TO_EXTERNAL/905321112233", "905321112233 CONNECTING_TO_EXTERNAL/"}, flowOf(h))
}

// calls is the calls the script's events were for.
func (s *script) calls() map[string]bool {
	ids := map[string]bool{}
	for _, e := range s.out {
		ids[e.CallID] = true
	}
	return ids
}

// FusionPBX records an extension's calls with uuid_record inside a set
// action (050_user_record.xml): no recording application runs, but
// FreeSWITCH says RECORD_START with the file.
func TestRecordingThePBXSaysItBeganIsTheCallsRecording(t *testing.T) {
	s := fsInbound(t, "pbx.example.com", "1000")
	s.app("c", "set", "uuid_record_result=+OK Success")
	s.feed(Input{Kind: KindRecord, Channel: Channel{ID: "c", Recording: "/var/lib/freeswitch/recordings/pbx.example.com/archive/2026/Dec/07/c.wav"}})
	s.app("c", "bridge", "user/1000@pbx.example.com")
	s.answeredBy("a", "sofia/internal/sip:1000@192.168.1.50:5060", "1000")
	s.endCaller("a")

	h := s.last(CallHangup)
	assert.True(t, h.CDR.Recorded)
	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
}

// Voicemail taking a message records it (RECORD_START while voicemail
// runs, as g05 shows): a message is no recording of the call.
func TestVoicemailMessageIsNoRecordingOfTheCall(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.unanswered("1000")
	s.app("c", "answer", "")
	s.state("c", "Up")
	s.app("c", "voicemail", "default 192.168.1.10 1000")
	s.feed(Input{Kind: KindRecord, Channel: Channel{ID: "c", App: "voicemail", AppData: "default 192.168.1.10 1000", Recording: "/var/lib/freeswitch/storage/voicemail/msg.wav"}})
	s.endCaller()
	assert.False(t, s.last(CallHangup).CDR.Recorded)
}

// FreeSWITCH's error/CAUSE endpoint creates no leg: it fails the bridge
// with CAUSE at once (mod_dptools' error endpoint; a failover's last
// resort, or what ${sofia_contact()} expands to for a user not
// registered). It is no destination: no step, no call_init_extension for
// an extension "user_busy".
func TestBridgeToTheErrorEndpointIsNoStep(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "error/user_busy")
	s.hangup("c", false, 17) // USER_BUSY
	s.destroy("c", 17)

	assert.NotContains(t, s.types(), CallInitExtension)
	h := s.last(CallHangup)
	for _, st := range h.CDR.Callflow {
		assert.NotEqual(t, "user_busy", st.Callee, "a step for the error endpoint: %+v", st)
		assert.NotEqual(t, "user_busy", st.Target, "a step for the error endpoint: %+v", st)
	}
	assert.Equal(t, []EventType{CallInit, CallHangup}, s.types()[:2])
}

// FreeSWITCH's group/NAME@DOMAIN endpoint rings the members of the call
// group NAME (mod_dptools' group endpoint, ${group_call()}): a ring group,
// named by the group, not an extension named after it.
func TestBridgeToTheGroupEndpointIsAGroupStep(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "group/sales@192.0.2.2")
	s.answeredBy("a", "sofia/internal/1001@127.0.0.1:5171", "1001")
	s.endCaller("a")

	assert.Equal(t, []EventType{CallInit, CallInitGroup, CallHangup}, s.types())
	assert.Equal(t, "sales", s.last(CallInitGroup).Destination)
	h := s.last(CallHangup)
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
	// As any ring group: the group's step, then the member who answered.
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_GROUP/sales", "sales REDIRECTED_TO_EXTENSION/1001", "1001 CONNECTING_TO_EXTENSION/"}, flowOf(h))
}

// A pickup/KEY target rings nobody: the call waits for whoever picks it
// up (mod_dptools' pickup endpoint), whose leg the tracker adopts then.
// Beside one extension it does not make the bridge a ring group.
func TestBridgeBesideThePickupEndpointIsTheExtension(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "user/1000@192.0.2.2,pickup/1000")
	assert.Equal(t, []EventType{CallInit, CallInitExtension}, s.types())
	assert.Equal(t, "1000", s.last(CallInitExtension).Destination)
}

// A FreeSWITCH bridge whose channel variables hold commas
// ({a=1,b=2}sofia/gateway/...) is one destination, outside: no extension
// named after the gateway.
func TestBridgeThroughAGatewayWithVariablesIsOutside(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "{ignore_early_media=true,origination_caller_id_number=908508850000}sofia/gateway/carrier/05321112233")
	s.answeredBy("o", "sofia/external/05321112233", "05321112233")
	s.endCaller("o")

	assert.Equal(t, []EventType{CallInit, CallHangup}, s.types())
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTERNAL/905321112233", "905321112233 CONNECTING_TO_EXTERNAL/"}, flowOf(s.last(CallHangup)))
}

// The stock dialplan parks calls with mod_fifo: 1000 sends the caller to
// 5900, whose "fifo 5900@DOMAIN in" holds it; 1001 dials 5901, whose
// "fifo 5900@DOMAIN out nowait" bridges 1001, the consumer, to the
// caller (switch_ivr_multi_threaded_bridge from the consumer's session:
// its CHANNEL_BRIDGE names the caller as the other leg). The park step is
// the space's, and 1001 takes the call.
func TestStockParkThroughFIFO(t *testing.T) {
	s := fsInbound(t, "default", "1000")
	s.app("c", "bridge", "user/1000@192.168.1.10")
	s.answeredBy("a", "sofia/internal/sip:1000@192.168.1.50:5060", "1000")
	s.feed(Input{Kind: KindBridgeLeave, Channel: *s.ch["c"], Bridge: "c"})
	s.destroy("a", 16)
	s.goTo("c", "default", "5900")
	s.app("c", "set", "fifo_music=local_stream://moh")
	s.app("c", "fifo", "5900@192.168.1.10 in")
	s.create("r", "sofia/internal/1001@192.168.1.51:5060", "Ring", "1001", "default", "5901", "r")
	s.app("r", "answer", "")
	s.state("r", "Up")
	s.app("r", "fifo", "5900@192.168.1.10 out nowait")
	s.bridge("r", "r", "c")
	s.endCaller("r")

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, []string{"1000", "1001"}, destinations(s))
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 OTHER/5900", "5900 REDIRECTED_TO_EXTENSION/1001", "1001 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
}

func TestFIFONode(t *testing.T) {
	for _, tc := range []struct {
		data    string
		space   string
		entered bool
	}{
		{"5900@192.168.1.10 in", "5900", true},
		{"701@example.com in undef local_stream://moh", "701", true},
		{"sales!3 IN", "sales", true},
		{"5900@192.168.1.10 out nowait", "5900", false},
		{"sales,support out wait", "", false},
		{"5900", "", false},
		{"5900 sideways", "", false},
	} {
		space, entered := fifoNode(tc.data)
		assert.Equal(t, tc.space, space, tc.data)
		assert.Equal(t, tc.entered, entered, tc.data)
	}
}
