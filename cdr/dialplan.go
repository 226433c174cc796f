package cdr

import (
	"slices"
	"strings"
)

// target is one destination of a Dial (Asterisk) or bridge (FreeSWITCH).
type target struct {
	endpoint string // the device or trunk it goes through
	number   string // the number dialled on it; the endpoint itself for a device
	group    bool   // number names a ring group (FreeSWITCH's group/NAME)
	// app is the application a FreeSWITCH loopback/app=APP:ARGS runs in
	// the call's place (voicemail, say), with no number.
	app string
	// failover: rung only if every destination before it failed
	// (FreeSWITCH's '|').
	failover bool
	// followMe: the extension's own phone in its Follow Me (FreePBX's
	// Local/FMPR-N): the call is N's.
	followMe bool
}

// followMe reads FreePBX's Follow Me Local channels: FMPR-N rings
// extension N's own phone, FMGL-NUMBER# its list (a number each).
func followMe(tg target) target {
	if n, ok := strings.CutPrefix(tg.number, "FMPR-"); ok {
		tg.number, tg.followMe = n, true
	} else if n, ok := strings.CutPrefix(tg.number, "FMGL-"); ok {
		n, _, _ = strings.Cut(strings.TrimSuffix(n, "#"), "-")
		tg.number = n
	}
	return tg
}

// parseDial reads the destinations of a Dial or bridge application.
func parseDial(app, data string) []target {
	var out []target
	if app == "dial" {
		first, _, _ := strings.Cut(data, ",")
		for _, p := range strings.Split(first, "&") {
			if tg, ok := parseTarget(p); ok {
				out = append(out, tg)
			}
		}
		return out
	}
	for i, at := range splitBridge(strings.ReplaceAll(data, ":_:", ",")) {
		for _, p := range at {
			if tg, ok := parseTarget(p); ok {
				tg.failover = i > 0
				out = append(out, tg)
			}
		}
	}
	return out
}

// splitBridge splits a FreeSWITCH dial string into the destinations tried
// one after another ('|'), each those rung at once (','), but not inside
// the channel variables that prefix a leg or the whole string ({...},
// [...], <...>), whose values hold commas of their own.
func splitBridge(data string) [][]string {
	var tries [][]string
	var at []string
	depth, start := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[', '<':
			depth++
		case '}', ']', '>':
			if depth > 0 {
				depth--
			}
		case ',', '|':
			if depth > 0 {
				continue
			}
			at = append(at, data[start:i])
			start = i + 1
			if data[i] == '|' {
				tries = append(tries, at)
				at = nil
			}
		}
	}
	return append(tries, append(at, data[start:]))
}

// firstTried is the destinations tg rings before any failover, each number
// once (a user's registered contacts are one extension).
func firstTried(tg []target) []target {
	var out []target
	for _, t := range tg {
		same := func(o target) bool { return o.number == t.number && o.group == t.group && o.app == t.app }
		if !t.failover && !slices.ContainsFunc(out, same) {
			out = append(out, t)
		}
	}
	return out
}

// parseTarget reads TECH/resource[/extra]: PJSIP/1000, PJSIP/0532...@trunk,
// PJSIP/trunk/sip:0532...@host, SIP/trunk/0532..., Local/1000@ctx/n,
// sofia/internal/1000@host, sofia/gateway/gw/0532..., user/1000.
func parseTarget(s string) (target, bool) {
	s = strings.TrimSpace(s)
	// FreeSWITCH per-leg variables: {a=b}[c=d]sofia/...
	for len(s) > 0 && (s[0] == '{' || s[0] == '[' || s[0] == '<') {
		closer := map[byte]byte{'{': '}', '[': ']', '<': '>'}[s[0]]
		i := strings.IndexByte(s, closer)
		if i < 0 {
			return target{}, false
		}
		s = s[i+1:]
	}
	tech, rest, ok := strings.Cut(s, "/")
	if !ok || rest == "" {
		return target{}, false
	}
	tech = strings.ToLower(tech)
	fields := strings.Split(rest, "/")
	switch tech {
	case "sofia":
		// sofia/PROFILE/user@host or sofia/gateway/GW/number
		if len(fields) >= 3 && fields[0] == "gateway" {
			return target{endpoint: fields[1], number: userPart(fields[2])}, true
		}
		if len(fields) >= 2 {
			return target{endpoint: fields[0], number: userPart(fields[1])}, true
		}
		return target{number: userPart(fields[0])}, true
	case "loopback":
		if app, ok := strings.CutPrefix(rest, "app="); ok {
			// mod_loopback runs APP in the call's place: no number.
			app, _, _ = strings.Cut(app, ":")
			return target{app: strings.ToLower(app)}, true
		}
		return target{number: userPart(fields[0])}, true
	case "local":
		return followMe(target{number: userPart(fields[0])}), true
	case "user":
		return target{number: userPart(fields[0])}, true
	case "group":
		// FreeSWITCH's group/NAME@DOMAIN rings the call group's members.
		return target{number: userPart(fields[0]), group: true}, true
	case "error", "pickup":
		// FreeSWITCH's error/CAUSE fails at once with no leg, and
		// pickup/KEY rings nobody (the call waits for a pickup): neither
		// is a destination.
		return target{}, false
	}
	res := fields[0]
	if len(fields) >= 2 && fields[1] != "" && !isDialOption(fields[1]) {
		// TECH/ENDPOINT/NUMBER, PJSIP/ENDPOINT/sip:USER@host, and
		// IAX2/[user[:secret]@]host/NUMBER: the endpoint is the host.
		if _, host, ok := strings.Cut(res, "@"); ok {
			res = host
		}
		num := userPart(fields[1])
		if _, _, ok := digits(num); !ok {
			if _, _, ok := digits(res); ok {
				// A contact whose user is no number (a WebRTC client's
				// random one) belongs to the device it is dialled on.
				num = res
			}
		}
		return target{endpoint: res, number: num}, true
	}
	if num, ep, ok := strings.Cut(res, "@"); ok {
		return target{endpoint: ep, number: num}, true
	}
	return target{endpoint: res, number: res}, true
}

// userPart takes the user of sip:user@host or user@host.
func userPart(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "sip:"), "sips:")
	u, _, _ := strings.Cut(s, "@")
	return u
}

// isDialOption tells Local's /n style flags from a dialled number.
func isDialOption(s string) bool {
	return len(s) <= 2 && strings.Trim(s, "nbjm") == ""
}

// isExternal says whether a dial target leaves the PBX.
func (t *Tracker) isExternal(tg target) bool {
	if tg.endpoint != "" && matchAny(t.cfg.Trunks, tg.endpoint) {
		return true
	}
	return t.num.isOutside(tg.number)
}

func appIs(app string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(app, n) {
			return true
		}
	}
	return false
}

// isDialPseudoApp: what Asterisk shows as the application of a leg that a
// Dial or Queue is calling.
func isDialPseudoApp(app string) bool {
	return app == "" || appIs(app, "AppDial", "AppDial2", "AppQueue")
}

func isRecordApp(app string) bool {
	return appIs(app, "MixMonitor", "Monitor", "Record", "record_session")
}

func isFaxApp(app string) bool {
	return appIs(app, "ReceiveFax", "rxfax")
}

// isVoicemail says whether app (with data) is voicemail: the application
// (Asterisk's VoiceMail, FreeSWITCH's voicemail), or FusionPBX's Lua
// script (lua app.lua voicemail).
func isVoicemail(app, data string) bool {
	if appIs(app, "voicemail") {
		return true
	}
	f := strings.Fields(data)
	return appIs(app, "lua") && len(f) >= 2 && strings.HasSuffix(f[0], "app.lua") && f[1] == "voicemail"
}

// promptOnly reports whether a menu application in context only plays a
// prompt a caller may cut short, no menu: FreePBX's macros (the voicemail
// greeting's Read, press 0 for the operator) and its announcements with
// "Allow Skip" (Background in app-announcement-N; a key goes on to the
// announcement's one destination).
func promptOnly(context string) bool {
	return strings.HasPrefix(context, "macro-") || strings.HasPrefix(context, "app-announcement-")
}

func isMenuApp(app string) bool {
	return appIs(app, "Background", "WaitExten", "Read", "ivr", "play_and_get_digits")
}
