package cdr

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Shapes of FreePBX's generated dialplan (core, ringgroups, ivr) and of
// Asterisk's own applications, read from their sources: no recording
// shows them yet.

// predial runs FreePBX's b(func-apply-sipheaders^s^1) on a callee leg:
// Dial runs it on the new channel before it calls it, and before it
// publishes the Dial event that names the caller (app_dial.c, ast_pre_call).
func (s *script) predial(id string) {
	c := s.ch[id]
	ctx, ex := c.Context, c.Exten
	s.goTo(id, "func-apply-sipheaders", "s")
	s.app(id, "NoOp", "Applying SIP Headers to channel "+c.Name)
	s.app(id, "Set", "TECH=PJSIP")
	s.app(id, "Return", "")
	s.goTo(id, ctx, ex)
}

// fpbxInbound starts a carrier's call through FreePBX's inbound route,
// its linked id linked ("" without channelvars = CHANNEL(linkedid)).
func fpbxInbound(s *script, id, linked string) {
	s.create(id, "PJSIP/carrier-00000001", "Ring", "02161234567", "from-pstn", "908508850000", linked)
	s.app(id, "Set", "__FROM_DID=908508850000")
	s.goTo(id, "ext-did-0002", "908508850000")
	s.app(id, "Set", "__FROM_DID=${EXTEN}")
}

// fpbxExtensionAnswers sends caller to extension 1000 (ext-local,
// Macro(dial-one)), whose phone, leg callee, answers; the call ends.
func fpbxExtensionAnswers(s *script, caller, callee string) {
	s.goTo(caller, "ext-local", "1000")
	s.app(caller, "Macro", "exten-vm,1000,1000,0,0,0")
	s.goTo(caller, "macro-dial-one", "s")
	s.app(caller, "Dial", "PJSIP/1000/sip:1000@10.0.0.10:5060,15,trb(func-apply-sipheaders^s^1)")
	s.create(callee, "PJSIP/1000-00000002", "Down", "1000", "from-internal", "s", caller)
	s.dialString(caller, callee, "", "1000/sip:1000@10.0.0.10:5060", "")
	s.state(callee, "Up")
	s.dialString(caller, callee, "ANSWER", "", "")
	s.hangup(caller, false, 16)
	s.destroy(callee, 16)
	s.destroy(caller, 16)
}

// A callee's predial routine runs before the Dial that names its caller:
// without the linked id (FreePBX's default ari.conf) the leg is still no
// call of its own, and the outbound call is answered outside.
func TestPredialRoutineOfACalleeIsNoCallOfItsOwn(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("o.0", "PJSIP/1000-00000001", "Ring", "1000", "from-internal", "05321112233", "")
	s.goTo("o.0", "macro-dialout-trunk", "s")
	s.app("o.0", "Dial", "PJSIP/05321112233@trunk1,300,Tb(func-apply-sipheaders^s^1,(1))")
	s.create("o.1", "PJSIP/trunk1-00000002", "Down", "05321112233", "from-pstn", "s", "")
	s.predial("o.1")
	s.dialString("o.0", "o.1", "", "05321112233@trunk1", "")
	s.state("o.1", "Up")
	s.dialString("o.0", "o.1", "ANSWER", "", "")
	s.state("o.0", "Up")
	s.hangup("o.0", false, 16)
	s.destroy("o.0", 16)
	s.destroy("o.1", 16)

	assert.Equal(t, []EventType{CallInit, CallHangup}, s.types())
	assert.Len(t, s.calls(), 1)
	h := s.last(CallHangup)
	assert.Equal(t, Outbound, h.Direction)
	assert.Equal(t, "SUCCESS", h.ResultDisposition)
}

// fpbxRingGroup rings ring group 600's members 101 and 102 as FreePBX
// does: ext-group,600 runs Macro(dial), whose Dial, in macro-dial,s,
// rings each member's contact (dialparties.agi), with a predial routine.
func fpbxRingGroup(t *testing.T, linked string) *script {
	s := newScript(t, DefaultConfig())
	fpbxInbound(s, "r.0", linked)
	s.goTo("r.0", "ext-group", "600")
	s.app("r.0", "Set", "RingGroupMethod=ringall")
	s.app("r.0", "Macro", "dial,20,tr,101-102")
	s.goTo("r.0", "macro-dial", "s")
	s.app("r.0", "AGI", "dialparties.agi")
	s.app("r.0", "Dial", "PJSIP/101/sip:101@10.0.0.11:5060&PJSIP/102/sip:102@10.0.0.12:5060,20,trM(auto-blkvm)b(func-apply-sipheaders^s^1)")
	s.create("r.1", "PJSIP/101-00000002", "Down", "101", "from-internal", "s", linked)
	s.create("r.2", "PJSIP/102-00000003", "Down", "102", "from-internal", "s", linked)
	s.predial("r.1")
	s.predial("r.2")
	s.dialString("r.0", "r.1", "", "101/sip:101@10.0.0.11:5060", "")
	s.dialString("r.0", "r.2", "", "102/sip:102@10.0.0.12:5060", "")
	return s
}

func TestFreePBXRingGroupRingsItsMembersFromAMacro(t *testing.T) {
	for _, linked := range []string{"r.0", ""} {
		s := fpbxRingGroup(t, linked)
		s.state("r.2", "Up")
		s.dialString("r.0", "r.2", "ANSWER", "", "")
		s.dialString("r.0", "r.1", "CANCEL", "", "")
		s.destroy("r.1", 26)
		s.state("r.0", "Up")
		s.hangup("r.0", false, 16)
		s.destroy("r.2", 16)
		s.destroy("r.0", 16)

		assert.Equal(t, []EventType{CallInit, CallInitGroup, CallHangup}, s.types(), "linked id %q", linked)
		assert.Equal(t, "600", s.last(CallInitGroup).Destination)
		h := s.last(CallHangup)
		assert.Equal(t, "SUCCESS", h.ResultDisposition)
		assert.Equal(t, []string{"908508850000 REDIRECTED_TO_GROUP/600", "600 REDIRECTED_TO_EXTENSION/102", "102 CONNECTING_TO_EXTENSION/"}, flowOf(h), "linked id %q", linked)
	}
}

// Nobody answers: the call comes back to ext-group,600 for the group's
// failover destination, voicemail here. The group was told once.
func TestFreePBXRingGroupNobodyAnswersIsOneGroupStep(t *testing.T) {
	s := fpbxRingGroup(t, "r.0")
	s.dialString("r.0", "r.1", "NOANSWER", "", "")
	s.dialString("r.0", "r.2", "NOANSWER", "", "")
	s.destroy("r.1", 0)
	s.destroy("r.2", 0)
	s.goTo("r.0", "ext-group", "600")
	s.app("r.0", "Gosub", "sub-record-cancel,s,1()")
	s.goTo("r.0", "ext-local", "vmu101")
	s.app("r.0", "Macro", "vm,101,NOANSWER,0")
	s.goTo("r.0", "macro-vm", "s")
	s.app("r.0", "VoiceMail", "101@default,u")
	s.state("r.0", "Up")
	s.hangup("r.0", false, 16)
	s.destroy("r.0", 16)

	assert.Equal(t, []EventType{CallInit, CallInitGroup, CallHangup, MissingCall}, s.types())
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_GROUP/600", "600 OTHER/voicemail", "voicemail OTHER/"}, flowOf(s.last(CallHangup)))
}

// A hunt group dials one member at a time from the same macro: each is a
// member ringing, not an extension the call was sent to.
func TestFreePBXHuntGroupRingsOneMemberAtATime(t *testing.T) {
	s := newScript(t, DefaultConfig())
	fpbxInbound(s, "h.0", "h.0")
	s.goTo("h.0", "ext-group", "600")
	s.app("h.0", "Set", "RingGroupMethod=hunt")
	s.app("h.0", "Macro", "dial,20,tr,101-102")
	s.goTo("h.0", "macro-dial", "s")
	for i, ext := range []string{"101", "102"} {
		id := "h." + string(rune('1'+i))
		s.app("h.0", "Dial", "PJSIP/"+ext+"/sip:"+ext+"@10.0.0.1"+ext[2:]+":5060,20,trb(func-apply-sipheaders^s^1)")
		s.create(id, "PJSIP/"+ext+"-0000000"+ext[2:], "Down", ext, "from-internal", "s", "h.0")
		s.dialString("h.0", id, "", ext+"/sip:"+ext+"@10.0.0.1"+ext[2:]+":5060", "")
		s.dialString("h.0", id, "NOANSWER", "", "")
		s.destroy(id, 0)
	}
	s.hangup("h.0", false, 16)
	s.destroy("h.0", 16)

	assert.Equal(t, []EventType{CallInit, CallInitGroup, CallHangup, MissingCall}, s.types())
}

// FreePBX dials an extension's registered contacts (PJSIP_DIAL_CONTACTS):
// two phones are one extension, and a contact whose user is no number (a
// WebRTC client's random one) is still the extension it belongs to.
func TestContactsOfAnExtensionAreTheExtension(t *testing.T) {
	for _, dial := range []string{
		"PJSIP/1000/sip:1000@192.168.1.20:5060;ob&PJSIP/1000/sip:1000@10.8.0.7:41234;transport=tcp",
		"PJSIP/1000/sip:k3j9d8a2@r5a1b2c3d4e5.invalid;transport=ws",
	} {
		s := newScript(t, DefaultConfig())
		fpbxInbound(s, "m.0", "m.0")
		s.goTo("m.0", "ext-local", "1000")
		s.app("m.0", "Macro", "exten-vm,1000,1000,0,0,0")
		s.goTo("m.0", "macro-dial-one", "s")
		s.app("m.0", "Dial", dial+",15,trb(func-apply-sipheaders^s^1)")
		s.create("m.1", "PJSIP/1000-00000002", "Down", "1000", "from-internal", "s", "m.0")
		s.dialString("m.0", "m.1", "", dial[len("PJSIP/"):], "")
		s.state("m.1", "Up")
		s.dialString("m.0", "m.1", "ANSWER", "", "")
		s.state("m.0", "Up")
		s.hangup("m.0", false, 16)
		s.destroy("m.1", 16)
		s.destroy("m.0", 16)

		assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types(), dial)
		assert.Equal(t, "1000", s.last(CallInitExtension).Destination, dial)
		assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 CONNECTING_TO_EXTENSION/"}, flowOf(s.last(CallHangup)), dial)
	}
}

// IAX2/[user[:secret]@]host/exten: the number is after the host, and the
// secret is never a destination.
func TestIAX2PeerWithASecretIsTheNumberDialled(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("i.0", "PJSIP/trunk-00000001", "Ring", "02161234567", "from-trunk", "908508850000", "i.0")
	s.app("i.0", "Dial", "IAX2/kanca:s3cr3t@iax.example.net/05321112233,30")
	s.create("i.1", "IAX2/iax.example.net-1234", "Down", "", "from-iax", "s", "i.0")
	s.dialString("i.0", "i.1", "", "kanca:s3cr3t@iax.example.net/05321112233", "")
	s.state("i.1", "Up")
	s.dialString("i.0", "i.1", "ANSWER", "", "")
	s.hangup("i.0", false, 16)
	s.destroy("i.1", 16)
	s.destroy("i.0", 16)

	assert.Equal(t, []EventType{CallInit, CallHangup}, s.types())
	assert.Equal(t, []string{"908508850000 REDIRECTED_TO_EXTERNAL/905321112233", "905321112233 CONNECTING_TO_EXTERNAL/"}, flowOf(s.last(CallHangup)))
}

// FreePBX's IVR "Direct Dial" goes through from-did-direct-ivr on its way
// to the extension: an entry context, not a menu, though its name ends
// in -ivr; and a menu the call is already in is not entered again when a
// macro returns to it.
func TestIVRDirectDialIsTheMenuThenTheExtension(t *testing.T) {
	s := newScript(t, DefaultConfig())
	fpbxInbound(s, "d.0", "d.0")
	s.goTo("d.0", "ivr-3", "s")
	s.app("d.0", "Answer", "")
	s.state("d.0", "Up")
	s.app("d.0", "Read", "IVREXT,custom/menu,,,0,10")
	s.app("d.0", "Macro", "blkvm-clr,")
	s.goTo("d.0", "macro-blkvm-clr", "s")
	s.app("d.0", "Set", "__NODEST=")
	s.goTo("d.0", "ivr-3", "s")
	s.app("d.0", "GotoIf", `$["${LOCALEXT}" = "1"]?from-did-direct-ivr,${IVREXT},1`)
	s.goTo("d.0", "from-did-direct-ivr", "1000")
	s.app("d.0", "Macro", "blkvm-clr,")
	s.goTo("d.0", "macro-blkvm-clr", "s")
	s.app("d.0", "Set", "__NODEST=")
	s.goTo("d.0", "from-did-direct-ivr", "1000")
	s.app("d.0", "Goto", "1000,from-did-direct,1")
	fpbxExtensionAnswers(s, "d.0", "d.1")

	assert.Equal(t, []EventType{CallInit, CallInitMenu, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, "3", s.last(CallInitMenu).Destination)
	assert.Equal(t, "1000", s.last(CallInitExtension).Destination)
}

// fpbxFollowMe sends a call to extension 1000's Follow Me, which rings
// 1000's phone (Local/FMPR-1000) and its list, a mobile here
// (Local/FMGL-NUMBER#), from Macro(dial) (findmefollow, dialparties.agi).
func fpbxFollowMe(t *testing.T) *script {
	s := newScript(t, DefaultConfig())
	fpbxInbound(s, "f.0", "f.0")
	s.goTo("f.0", "ext-findmefollow", "1000")
	s.goTo("f.0", "followme-check", "1000")
	s.app("f.0", "Gosub", "followme-sub,1000,1()")
	s.goTo("f.0", "followme-sub", "1000")
	s.app("f.0", "Set", "RingGroupMethod=ringallv2-prim")
	s.app("f.0", "Macro", "dial,20,tr,1000-05321112233#")
	s.goTo("f.0", "macro-dial", "s")
	s.app("f.0", "Dial", "Local/FMPR-1000@from-internal&Local/FMGL-05321112233#@from-internal,20,trb(func-apply-sipheaders^s^1)")
	s.create("f.1", "Local/FMPR-1000@from-internal-00000001;1", "Down", "", "from-internal", "FMPR-1000", "f.0")
	s.create("f.2", "Local/FMPR-1000@from-internal-00000001;2", "Ring", "", "from-internal", "FMPR-1000", "f.0")
	s.create("f.3", "Local/FMGL-05321112233#@from-internal-00000002;1", "Down", "", "from-internal", "FMGL-05321112233#", "f.0")
	s.create("f.4", "Local/FMGL-05321112233#@from-internal-00000002;2", "Ring", "", "from-internal", "FMGL-05321112233#", "f.0")
	s.dialString("f.0", "f.1", "", "Local/FMPR-1000@from-internal", "")
	s.dialString("f.0", "f.3", "", "Local/FMGL-05321112233#@from-internal", "")
	return s
}

// Follow Me is extension 1000's own: the call is 1000's, and the callflow
// names who answered, 1000's phone or the mobile it followed to.
func TestFreePBXFollowMeIsTheExtensions(t *testing.T) {
	for _, mobile := range []bool{false, true} {
		s := fpbxFollowMe(t)
		answers, other := "f.1", "f.3"
		if mobile {
			answers, other = other, answers
		}
		s.state(answers, "Up")
		s.dialString("f.0", answers, "ANSWER", "", "")
		s.dialString("f.0", other, "CANCEL", "", "")
		s.state("f.0", "Up")
		s.hangup("f.0", false, 16)
		for _, id := range []string{"f.1", "f.2", "f.3", "f.4", "f.0"} {
			s.destroy(id, 16)
		}

		assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types(), "mobile %v", mobile)
		assert.Equal(t, "1000", s.last(CallInitExtension).Destination)
		want := []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 CONNECTING_TO_EXTENSION/"}
		if mobile {
			want = []string{"908508850000 REDIRECTED_TO_EXTENSION/1000", "1000 REDIRECTED_TO_EXTERNAL/905321112233", "905321112233 CONNECTING_TO_EXTERNAL/"}
		}
		assert.Equal(t, want, flowOf(s.last(CallHangup)), "mobile %v", mobile)
	}
}

// Asterisk's own FollowMe(ID) rings ID's numbers through Local channels
// (app_followme.c): the call was offered to ID.
func TestFollowMeApplicationIsItsExtension(t *testing.T) {
	s := newScript(t, DefaultConfig())
	s.create("g.0", "PJSIP/trunk-00000001", "Ring", "02161234567", "from-trunk", "908508850000", "g.0")
	s.app("g.0", "FollowMe", "1000,s")
	s.state("g.0", "Up")
	s.create("g.1", "Local/1000@default-00000001;1", "Down", "", "default", "1000", "g.0")
	s.create("g.2", "Local/1000@default-00000001;2", "Ring", "02161234567", "default", "1000", "g.0")
	s.dialString("g.0", "g.1", "", "1000@default/m", "")
	s.state("g.1", "Up")
	s.dialString("g.0", "g.1", "ANSWER", "", "")
	s.hangup("g.0", false, 16)
	for _, id := range []string{"g.1", "g.2", "g.0"} {
		s.destroy(id, 16)
	}

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, "1000", s.last(CallInitExtension).Destination)
	assert.Equal(t, "SUCCESS", s.last(CallHangup).ResultDisposition)
}

// FreePBX's VmX Locator plays the voicemail greeting with Read (press 0
// for the operator) in macro-vm: a prompt before voicemail, not a menu.
func TestVoicemailGreetingReadIsNoMenu(t *testing.T) {
	s := newScript(t, DefaultConfig())
	fpbxInbound(s, "v.0", "v.0")
	s.goTo("v.0", "ext-local", "1000")
	s.goTo("v.0", "macro-dial-one", "s")
	s.app("v.0", "Dial", "PJSIP/1000/sip:1000@10.0.0.10:5060,15,trb(func-apply-sipheaders^s^1)")
	s.create("v.1", "PJSIP/1000-00000002", "Down", "1000", "from-internal", "s", "v.0")
	s.dialString("v.0", "v.1", "", "1000/sip:1000@10.0.0.10:5060", "")
	s.dialString("v.0", "v.1", "NOANSWER", "", "")
	s.destroy("v.1", 0)
	s.goTo("v.0", "macro-vm", "vmx")
	s.app("v.0", "Answer", "")
	s.state("v.0", "Up")
	s.app("v.0", "Read", "ACTION,/var/spool/asterisk/voicemail/default/1000/unavail,1,skip,1,2")
	s.goTo("v.0", "macro-vm", "s-NOANSWER")
	s.app("v.0", "VoiceMail", "1000@default,u")
	s.hangup("v.0", false, 16)
	s.destroy("v.0", 16)

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup, MissingCall}, s.types())
}

// FreePBX's announcement with "Allow Skip" plays its recording with
// Background in app-announcement-N, and any key goes on to its one
// destination: no menu, and the call goes on to the extension.
func TestFreePBXAnnouncementIsNoMenu(t *testing.T) {
	s := newScript(t, DefaultConfig())
	fpbxInbound(s, "a.0", "a.0")
	s.goTo("a.0", "app-announcement-1", "s")
	s.app("a.0", "Answer", "")
	s.state("a.0", "Up")
	s.app("a.0", "Wait", "1")
	s.app("a.0", "NoOp", "Playing announcement Welcome")
	s.app("a.0", "Background", "custom/welcome")
	s.goTo("a.0", "app-announcement-1", "1")
	s.app("a.0", "NoOp", "User skipped announcement")
	s.app("a.0", "Goto", "from-did-direct,1000,1")
	fpbxExtensionAnswers(s, "a.0", "a.1")

	assert.Equal(t, []EventType{CallInit, CallInitExtension, CallHangup}, s.types())
	assert.Equal(t, "1000", s.last(CallInitExtension).Destination)
}
