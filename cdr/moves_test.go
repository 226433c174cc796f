package cdr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (s *script) dialString(caller, peer, status, dialString, forward string) {
	s.feed(Input{Kind: KindDial, Channel: *s.ch[peer], Other: s.ch[caller], DialStatus: status, DialString: dialString, Forward: forward})
}

func (s *script) bridge(id, bridge, other string) {
	in := Input{Kind: KindBridgeEnter, Channel: *s.ch[id], Bridge: bridge}
	if other != "" {
		in.Other = &Channel{ID: other}
	}
	s.feed(in)
}

// inbound starts a carrier call to the DID that Dials extension ext, which
// answers: legs "c" (caller) and "a" (ext).
func inbound(t *testing.T, ext string) *script {
	s := newScript(t, DefaultConfig())
	s.create("c", "PJSIP/trunk-1", "Ring", "05321234567", "from-trunk", "908508850000", "")
	s.app("c", "Dial", "PJSIP/"+ext+",20")
	s.create("a", "PJSIP/"+ext+"-2", "Down", ext, "from-internal", "s", "")
	s.dialString("c", "a", "", ext, "")
	return s
}

func flowOf(h Event) []string {
	var out []string
	for _, st := range h.CDR.Callflow {
		out = append(out, st.Callee+" "+st.Redirection+"/"+st.Target)
	}
	return out
}

func destinations(s *script) []string {
	var out []string
	for _, e := range s.out {
		if e.Type == CallInitExtension {
			out = append(out, e.Destination)
		}
	}
	return out
}

// A 302 from 1000 to 1001 sends the call on to 1001, who answers.
// Asterisk's app_dial dials the new channel, announces its Dial, then the
// forward: a Dial for the first callee with status CANCEL and forward set.
func TestForwardBy302(t *testing.T) {
	s := inbound(t, "1000")
	s.create("b", "Local/1001@from-internal-00000001;1", "Down", "", "from-internal", "1001", "")
	s.dialString("c", "b", "", "1001@from-internal", "")
	s.dialString("c", "a", "CANCEL", "", "1001")
	s.destroy("a", 16)
	s.state("b", "Up")
	s.dialString("c", "b", "ANSWER", "", "")
	s.state("c", "Up")
	s.hangup("c", false, 16)
	s.destroy("b", 16)
	s.destroy("c", 16)

	assert.Equal(t, []string{"1000", "1001"}, destinations(s))
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 REDIRECTED_TO_EXTENSION/1001", "1001 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.True(t, h.CDR.Callflow[1].Answer.IsZero(), "1000 never answered")
	assert.False(t, h.CDR.Callflow[2].Answer.IsZero())
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallInitExtension, CallHangup}, s.types())

	assert.Equal(t, "1001", dialNumber("PJSIP/sip:1001@127.0.0.1:5072"))
	assert.Equal(t, "05321234567", dialNumber("trunk/sip:05321234567@10.0.0.1"))
	assert.Equal(t, "1002", dialNumber("1002@from-internal/n"))
}

// A forward to an outside number is a step of its own, with no routing
// event.
func TestForwardOutside(t *testing.T) {
	s := inbound(t, "1000")
	s.dialString("c", "a", "CANCEL", "", "05329876543")
	s.destroy("a", 16)
	s.hangup("c", false, 16)
	s.destroy("c", 16)
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 REDIRECTED_TO_EXTERNAL/905329876543", "905329876543 CONNECTING_TO_EXTERNAL/"}, flowOf(h))
	assert.Equal(t, []string{"1000"}, destinations(s))
}

// A parked call nobody retrieves comes back to the extension that parked
// it: a new step, but no second call_init_extension for that extension.
func TestParkTimesOutBackToParker(t *testing.T) {
	s := inbound(t, "1000")
	s.state("a", "Up")
	s.dialString("c", "a", "ANSWER", "", "")
	s.state("c", "Up")
	s.feed(Input{Kind: KindPark, Channel: *s.ch["c"], Target: "default"})
	s.hangup("a", false, 16)
	s.destroy("a", 16)
	s.goTo("c", "park-dial", "PJSIP_1000")
	s.app("c", "Dial", "PJSIP/1000,20")
	s.create("r", "PJSIP/1000-3", "Down", "1000", "from-internal", "s", "")
	s.dialString("c", "r", "", "1000", "")
	s.state("r", "Up")
	s.dialString("c", "r", "ANSWER", "", "")
	s.hangup("c", false, 16)
	s.destroy("r", 16)
	s.destroy("c", 16)

	assert.Equal(t, []string{"1000"}, destinations(s), "the parker is told once")
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 OTHER/default", "default REDIRECTED_TO_EXTENSION/1000", "1000 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.False(t, h.CDR.Callflow[2].Answer.IsZero(), "the PBX holds a parked call")
	assert.False(t, h.CDR.Callflow[3].Answer.IsZero())
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
}

// FreeSWITCH att_xfer abandoned: 1000 consults 1001, who does not answer;
// the caller stays with 1000. The consultation sends nothing and adds no
// step.
func TestAttendedTransferAbandoned(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("c", "sofia/internal/905321234567@127.0.0.1", "Ring", "905321234567", "capture", "908508850000", "c")
	s.app("c", "bridge", "sofia/internal/1000@127.0.0.1:5171")
	s.create("a", "sofia/internal/1000@127.0.0.1:5171", "Down", "905321234567", "capture", "1000", "c")
	s.dialString("c", "a", "", "1000", "")
	s.state("a", "Up")
	s.state("c", "Up")
	s.bridge("c", "c", "a")
	// The consultation leg is originated by 1000's leg.
	s.create("b", "sofia/internal/1001@127.0.0.1:5172", "Down", "905321234567", "capture", "1001", "a")
	s.dialString("a", "b", "", "1001", "")
	s.dialString("a", "b", "RINGING", "", "")
	s.dialString("a", "b", "NOANSWER", "", "")
	s.destroy("b", 19)
	s.bridge("c", "c", "a")
	s.hangup("c", false, 16)
	s.destroy("a", 16)
	s.destroy("c", 16)

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
}

// Asterisk attended transfer by REFER with Replaces: 1000 calls 1001 on a
// second line (an internal call, silent), then joins the caller to 1001.
// The consultation call is taken into the caller's call: nothing of its
// own is sent, 1001 gets one call_init_extension, and the call ends once.
func TestAttendedTransferOfConsultationCall(t *testing.T) {
	s := inbound(t, "1000")
	s.state("a", "Up")
	s.dialString("c", "a", "ANSWER", "", "")
	s.state("c", "Up")
	s.create("a2", "PJSIP/1000-4", "Ring", "1000", "from-internal", "1001", "")
	s.app("a2", "Dial", "PJSIP/1001,20")
	s.create("b", "PJSIP/1001-5", "Down", "1001", "from-internal", "s", "")
	s.dialString("a2", "b", "", "1001", "")
	s.state("b", "Up")
	s.dialString("a2", "b", "ANSWER", "", "")
	s.feed(Input{Kind: KindTransfer, Channel: *s.ch["c"], Detail: "attended", Target: "1001", Other: &Channel{ID: "b"}})
	for _, id := range []string{"a", "a2"} {
		s.hangup(id, false, 16)
		s.destroy(id, 16)
	}
	s.hangup("c", false, 16)
	s.destroy("b", 16)
	s.destroy("c", 16)

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, []string{"1000", "1001"}, destinations(s))
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 REDIRECTED_TO_EXTENSION/1001", "1001 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.False(t, h.CDR.Callflow[2].Answer.IsZero())
	assert.Zero(t, s.tr.Calls())
	require.Empty(t, s.tr.legs)
}

// ReadsVariable is what a source may filter ChannelVarset frames by:
// dropping every variable it does not name changes no webhook.
func TestReadsVariable(t *testing.T) {
	cfg := DefaultConfig()
	for _, v := range []string{"DIALSTATUS", "MIXMONITOR_FILENAME", "__DID", "DID", "FROM_DID"} {
		assert.True(t, cfg.ReadsVariable(v), v)
	}
	for _, v := range []string{"BRIDGEPEER", "RTPAUDIOQOS", "RINGTIME", "BLINDTRANSFER"} {
		assert.False(t, cfg.ReadsVariable(v), v)
	}
}

// A callee that forwards the call inside the PBX's own dial (a 302
// FreeSWITCH follows itself) shows as a callee leg of another number
// answering: the callflow names who answered, with its routing event.
func TestAnsweredByTheForwardTarget(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("c", "sofia/internal/905321234567@127.0.0.1", "Ring", "905321234567", "capture", "908508850000", "c")
	s.app("c", "bridge", "sofia/internal/1000@127.0.0.1:5171")
	s.create("b", "sofia/internal/1001@127.0.0.1:5172", "Down", "905321234567", "capture", "1001", "c")
	s.dialString("c", "b", "", "1001", "")
	s.state("b", "Up")
	s.state("c", "Up")
	s.hangup("c", false, 16)
	s.destroy("b", 16)
	s.destroy("c", 16)

	assert.Equal(t, []string{"1000", "1001"}, destinations(s))
	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 REDIRECTED_TO_EXTENSION/1001", "1001 CONNECTING_TO_EXTENSION/"}, flowOf(h))
	assert.True(t, h.CDR.Callflow[1].Answer.IsZero())
	assert.False(t, h.CDR.Callflow[2].Answer.IsZero())
}

// A lot that chooses the space itself (FreeSWITCH's valet_park LOT auto
// ...) names it only on the parked leg's later events
// (valet_lot_extension): the park step takes that name, whether the
// caller hangs up there or is taken from it while kanca hears nothing
// of the taking (a gap), as when the taker's valet_park names it.
func TestParkInASpaceTheLotChoseIsNamedByIt(t *testing.T) {
	s := inbound(t, "1000")
	s.state("a", "Up")
	s.dialString("c", "a", "ANSWER", "", "")
	s.state("c", "Up")
	s.app("c", "valet_park", "capture_lot auto in 701 720")
	s.destroy("a", 16)
	s.ch["c"].Parked = "701"
	s.app("c", "playback", "local_stream://moh")
	s.hangup("c", false, 16)
	s.destroy("c", 16)

	h := s.last(CallHangup)
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 OTHER/701", "701 OTHER/"}, flowOf(h))
}
