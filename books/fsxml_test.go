package books_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
)

// The recordings hold FreeSWITCH's mod_json_cdr files only. These helpers
// write the same records as mod_xml_cdr and FusionPBX keep them. The XML
// layout is read from FreeSWITCH's source (switch_ivr_generate_xml_cdr
// and switch_ivr_set_xml_chan_var in src/switch_ivr.c, switch_xml_toxml,
// mod_xml_cdr's file names), not from a recording: not yet checked
// against a recording.

// xmlCDR is the mod_xml_cdr record of the leg whose mod_json_cdr record
// is b: <cdr core-uuid switchname>, <channel_data>, <call-stats>,
// <variables> (each value URL-encoded, an array variable repeated once
// per value), <app_log> of <application app_name app_data app_stamp/>,
// and a <callflow dialplan profile_index> per caller profile holding
// <extension>, <caller_profile> (with <originator>, <originatee> of
// <originator_caller_profile>, <originatee_caller_profile>) and <times>.
func xmlCDR(t *testing.T, b []byte) []byte {
	t.Helper()
	var r map[string]any
	require.NoError(t, json.Unmarshal(b, &r))
	w := &xmlWriter{}
	w.buf.WriteString("<?xml version=\"1.0\"?>\n")
	w.open("cdr", "core-uuid", str(r["core-uuid"]), "switchname", str(r["switchname"]))
	if cd, ok := r["channel_data"].(map[string]any); ok {
		w.open("channel_data")
		for _, k := range []string{"state", "direction", "state_number", "flags", "caps"} {
			if v, ok := cd[k]; ok {
				w.text(k, str(v))
			}
		}
		w.close("channel_data")
	}
	if cs, ok := r["callStats"].(map[string]any); ok {
		w.tree("call-stats", cs)
	}
	vars, _ := r["variables"].(map[string]any)
	w.open("variables")
	for _, k := range sortedKeys(vars) {
		v := str(vars[k])
		vals := []string{v}
		if a, ok := strings.CutPrefix(v, "ARRAY::"); ok {
			vals = strings.Split(a, "|:")
		}
		for _, v := range vals {
			w.text(k, urlEncode(v))
		}
	}
	w.close("variables")
	if al, ok := r["app_log"].(map[string]any); ok {
		w.open("app_log")
		for _, a := range list(al["applications"]) {
			a := a.(map[string]any)
			w.empty("application", "app_name", str(a["app_name"]), "app_data", str(a["app_data"]), "app_stamp", str(a["app_stamp"]))
		}
		w.close("app_log")
	}
	for _, f := range list(r["callflow"]) {
		f := f.(map[string]any)
		var attrs []string
		for _, k := range []string{"dialplan", "profile_index"} {
			if v, ok := f[k]; ok {
				attrs = append(attrs, k, str(v))
			}
		}
		w.open("callflow", attrs...)
		if e, ok := f["extension"].(map[string]any); ok {
			attrs := []string{"name", str(e["name"]), "number", str(e["number"])}
			if c, ok := e["current_app"]; ok {
				attrs = append(attrs, "current_app", str(c))
			}
			w.open("extension", attrs...)
			for _, a := range list(e["applications"]) {
				a := a.(map[string]any)
				var attrs []string
				if l, ok := a["last_executed"]; ok {
					attrs = append(attrs, "last_executed", str(l))
				}
				w.empty("application", append(attrs, "app_name", str(a["app_name"]), "app_data", str(a["app_data"]))...)
			}
			w.close("extension")
		}
		cp := f["caller_profile"].(map[string]any)
		w.open("caller_profile")
		w.profile(cp)
		for _, o := range []string{"origination", "originator", "originatee"} {
			if m, ok := cp[o].(map[string]any); ok {
				w.open(o)
				for _, p := range list(m[o+"_caller_profiles"]) {
					w.open(o + "_caller_profile")
					w.profile(p.(map[string]any))
					w.close(o + "_caller_profile")
				}
				w.close(o)
			}
		}
		w.close("caller_profile")
		if tm, ok := f["times"].(map[string]any); ok {
			w.open("times")
			for _, k := range []string{"created_time", "profile_created_time", "progress_time", "progress_media_time", "answered_time",
				"bridged_time", "last_hold_time", "hold_accum_time", "hangup_time", "resurrect_time", "transfer_time"} {
				if v, ok := tm[k]; ok {
					w.text(k, str(v))
				}
			}
			w.close("times")
		}
		w.close("callflow")
	}
	w.close("cdr")
	return w.buf.Bytes()
}

// xmlWriter writes XML as switch_xml_toxml does, near enough for a
// parser: escaped text and attributes, an element per line.
type xmlWriter struct{ buf bytes.Buffer }

func (w *xmlWriter) start(name string, attrs []string) {
	w.buf.WriteString("<" + name)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.buf.WriteString(" " + attrs[i] + `="`)
		xml.EscapeText(&w.buf, []byte(attrs[i+1]))
		w.buf.WriteString(`"`)
	}
}

func (w *xmlWriter) open(name string, attrs ...string) {
	w.start(name, attrs)
	w.buf.WriteString(">\n")
}
func (w *xmlWriter) close(name string) { w.buf.WriteString("</" + name + ">\n") }
func (w *xmlWriter) empty(name string, attrs ...string) {
	w.start(name, attrs)
	w.buf.WriteString("/>\n")
}

func (w *xmlWriter) text(name, s string) {
	w.buf.WriteString("<" + name + ">")
	xml.EscapeText(&w.buf, []byte(s))
	w.buf.WriteString("</" + name + ">\n")
}

// profile writes a caller profile's fields in switch_ivr_set_xml_profile_data's order.
func (w *xmlWriter) profile(p map[string]any) {
	for _, k := range []string{"username", "dialplan", "caller_id_name", "caller_id_number", "callee_id_name", "callee_id_number",
		"ani", "aniii", "network_addr", "rdnis", "destination_number", "uuid", "source", "transfer_source", "context", "chan_name"} {
		if v, ok := p[k]; ok {
			w.text(k, str(v))
		}
	}
}

// tree writes an object of objects and numbers (call statistics).
func (w *xmlWriter) tree(name string, m map[string]any) {
	w.open(name)
	for _, k := range sortedKeys(m) {
		if o, ok := m[k].(map[string]any); ok {
			w.tree(k, o)
		} else {
			w.text(k, str(m[k]))
		}
	}
	w.close(name)
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case map[string]any:
		return []any{x}
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// urlEncode is switch_url_encode: SWITCH_URL_UNSAFE, controls and bytes
// above '~' as %XX, a %XX already there kept.
func urlEncode(s string) string {
	const unsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""
	const hex = "0123456789ABCDEF"
	isHex := func(c byte) bool { return strings.IndexByte(hex, c) >= 0 }
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(c)
			continue
		}
		if c < ' ' || c > '~' || strings.IndexByte(unsafe, c) >= 0 {
			b.WriteString("%" + string(hex[c>>4]) + string(hex[c&15]))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// simpleXMLJSON is what FusionPBX stores of an XML record: PHP's
// json_encode of simplexml_load_string (app/xml_cdr/resources/classes/
// xml_cdr.php): the root's children; an element of text alone is its
// text, an empty one {}; attributes under "@attributes"; an element
// repeated is an array; text beside children is dropped.
func simpleXMLJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	type node struct {
		name  string
		attrs []xml.Attr
		text  string
		kids  []*node
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch x := tok.(type) {
		case xml.StartElement:
			n := &node{name: x.Name.Local, attrs: x.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(x)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	require.NotNil(t, root)
	var enc func(n *node) any
	enc = func(n *node) any {
		if len(n.kids) == 0 && len(n.attrs) == 0 {
			if n.text == "" {
				return map[string]any{}
			}
			return n.text
		}
		// An ordered object: "@attributes" first, then each name once.
		var out orderedJSON
		if len(n.attrs) > 0 {
			var a orderedJSON
			for _, at := range n.attrs {
				a = append(a, kv{at.Name.Local, at.Value})
			}
			out = append(out, kv{"@attributes", a})
		}
		var names []string
		group := map[string][]any{}
		for _, k := range n.kids {
			if _, ok := group[k.name]; !ok {
				names = append(names, k.name)
			}
			group[k.name] = append(group[k.name], enc(k))
		}
		for _, name := range names {
			if g := group[name]; len(g) == 1 {
				out = append(out, kv{name, g[0]})
			} else {
				out = append(out, kv{name, g})
			}
		}
		return out
	}
	j, err := json.Marshal(enc(root))
	require.NoError(t, err)
	return j
}

type kv struct {
	k string
	v any
}

// orderedJSON is a JSON object that keeps its keys' order.
type orderedJSON []kv

func (o orderedJSON) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// writeXMLCDRs writes the mod_xml_cdr files of a recording's mod_json_cdr
// files into dir, under mod_xml_cdr's names, and returns each leg's XML.
func writeXMLCDRs(t *testing.T, rec recording, dir string) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(rec.dir, "cdr", "*.cdr.json"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	out := map[string][]byte{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		x := xmlCDR(t, b)
		base := strings.TrimSuffix(filepath.Base(name), ".cdr.json")
		require.NoError(t, os.WriteFile(filepath.Join(dir, base+".cdr.xml"), x, 0o644))
		out[base] = x
	}
	return out
}

// TestRecoverFromXMLCDR does what TestRecoverFromJSONCDR does with the
// same legs' records as mod_xml_cdr writes them, and requires the same
// figures: the XML is read into the record the JSON is.
func TestRecoverFromXMLCDR(t *testing.T) {
	recs := freeswitchRecordings(t)
	dir := t.TempDir()
	for _, rec := range recs {
		writeXMLCDRs(t, rec, filepath.Join(dir, filepath.Base(rec.dir)))
	}
	fromJSON, jsonDiffers := score(t, recs, func(rec recording) books.Books { return jsonCDR(t, rec) }, nil)
	got, differ := recoverFreeSWITCH(t, "mod_xml_cdr files", recs, func(rec recording) books.Books {
		b, err := books.Open(filepath.Join(dir, filepath.Base(rec.dir)))
		require.NoError(t, err)
		return b
	})
	require.Equal(t, fromJSON.String(), got.String(), "mod_xml_cdr's records tell what mod_json_cdr's do")
	require.Equal(t, jsonDiffers, differ)
}

// TestRecoverFromXMLCDRALegsOnly reads a directory of A legs' files only
// (mod_xml_cdr's log-b-leg false): the B legs are told from their A
// leg's record, as from FusionPBX's A legs.
func TestRecoverFromXMLCDRALegsOnly(t *testing.T) {
	recs := freeswitchRecordings(t)
	dir := t.TempDir()
	for _, rec := range recs {
		d := filepath.Join(dir, filepath.Base(rec.dir))
		for name := range writeXMLCDRs(t, rec, d) {
			if !strings.HasPrefix(name, "a_") {
				require.NoError(t, os.Remove(filepath.Join(d, name+".cdr.xml")))
			}
		}
	}
	blind, _ := score(t, recs, nil, nil)
	got, differ := score(t, recs, func(rec recording) books.Books {
		b, err := books.Open(filepath.Join(dir, filepath.Base(rec.dir)))
		require.NoError(t, err)
		return b
	}, nil)
	t.Logf("the same as a run that never stopped: from A legs' mod_xml_cdr files %v; without books %v", got, blind)
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.Greater(t, got.endedSame, blind.endedSame, "the A legs' books change nothing")
	require.LessOrEqual(t, got.ended-got.endedSame, fusionALegsDiffer)
}

// TestXMLCDRWithNamesXMLRefuses: FreeSWITCH writes a variable's name as
// its element's name, and allows names XML refuses (FusionPBX repairs
// "set api_hangup_hook", "^^,default_language" and numeric ones before
// it parses). Such a record reads as it would without them.
func TestXMLCDRWithNamesXMLRefuses(t *testing.T) {
	rec := freeswitchRecordings(t)[0]
	clean, dirty := t.TempDir(), t.TempDir()
	for name, x := range writeXMLCDRs(t, rec, clean) {
		odd := "<variables>\n<set api_hangup_hook>lua%20x.lua</set api_hangup_hook>\n<^^,default_language>en</^^,default_language>\n<1234>y</1234>\n<empty/>\n"
		x = bytes.Replace(x, []byte("<variables>\n"), []byte(odd), 1)
		require.NoError(t, os.WriteFile(filepath.Join(dirty, name+".cdr.xml"), x, 0o644))
	}
	calls := func(dir string) []books.Call {
		b, err := books.Open(dir)
		require.NoError(t, err)
		c, err := b.Calls(context.Background(), time.Unix(0, 0), time.Now().Add(time.Hour))
		require.NoError(t, err)
		return c
	}
	want := calls(clean)
	require.NotEmpty(t, want)
	require.Equal(t, want, calls(dirty))
}

// TestRecoverFromJSONCDRValuesEncoded: mod_json_cdr URL-encodes each
// variable's value by default (encode-values); the recordings' files
// were written with it off. The same legs with their values encoded give
// the same figures, with every leg and with A legs only.
func TestRecoverFromJSONCDRValuesEncoded(t *testing.T) {
	recs := freeswitchRecordings(t)
	plain, encoded := t.TempDir(), t.TempDir()
	for _, rec := range recs {
		names, err := filepath.Glob(filepath.Join(rec.dir, "cdr", "*.cdr.json"))
		require.NoError(t, err)
		for _, name := range names {
			b, err := os.ReadFile(name)
			require.NoError(t, err)
			var r map[string]any
			require.NoError(t, json.Unmarshal(b, &r))
			vars := r["variables"].(map[string]any)
			for k, v := range vars {
				vars[k] = urlEncode(str(v))
			}
			e, err := json.Marshal(r)
			require.NoError(t, err)
			for _, d := range []struct {
				dir string
				b   []byte
			}{{plain, b}, {encoded, e}} {
				for _, sub := range []string{"all", "a"} {
					if sub == "a" && !strings.HasPrefix(filepath.Base(name), "a_") {
						continue
					}
					out := filepath.Join(d.dir, sub, filepath.Base(rec.dir))
					require.NoError(t, os.MkdirAll(out, 0o755))
					require.NoError(t, os.WriteFile(filepath.Join(out, filepath.Base(name)), d.b, 0o644))
				}
			}
		}
	}
	for _, sub := range []string{"all", "a"} {
		open := func(dir string) func(recording) books.Books {
			return func(rec recording) books.Books {
				b, err := books.Open(filepath.Join(dir, sub, filepath.Base(rec.dir)))
				require.NoError(t, err)
				return b
			}
		}
		want, wantDiffer := score(t, recs, open(plain), nil)
		got, differ := score(t, recs, open(encoded), nil)
		t.Logf("%s legs, values encoded: %v", sub, got)
		require.Equal(t, want.String(), got.String(), "%s legs", sub)
		require.Equal(t, wantDiffer, differ, "%s legs", sub)
	}
}

// TestBLegFromALegEndsWhenTransferredAway: with A legs only, the leg
// 1000 answered (9976...) is told from the caller's record; its end is
// when the caller's profile was transferred away from it (1000 parked
// the call), not the caller's own end ten seconds later.
func TestBLegFromALegEndsWhenTransferredAway(t *testing.T) {
	rec := loadRecording(t, "../testdata/esl/g04_park_by_1000_retrieved_by_1001", "esl")
	dir := t.TempDir()
	for name := range writeXMLCDRs(t, rec, dir) {
		if !strings.HasPrefix(name, "a_") {
			require.NoError(t, os.Remove(filepath.Join(dir, name+".cdr.xml")))
		}
	}
	b, err := books.Open(dir)
	require.NoError(t, err)
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	none := func(string) bool { return false }
	got, err := books.Recover(context.Background(), b, first.Add(-time.Second), last.Add(2*time.Second), books.Known{Follows: none, Listed: none, Up: none})
	require.NoError(t, err)
	// The live stream's end of that leg.
	var want time.Time
	for _, in := range rec.ins {
		if in.Kind == cdr.KindDestroyed && strings.HasPrefix(in.Channel.ID, "9976ee41") && want.IsZero() {
			want = in.Time
		}
	}
	require.False(t, want.IsZero())
	var ends []cdr.Input
	for _, in := range got.Inputs {
		if in.Kind == cdr.KindDestroyed && strings.HasPrefix(in.Channel.ID, "9976ee41") {
			ends = append(ends, in)
		}
	}
	require.Len(t, ends, 1, "the leg is told from the caller's record")
	require.WithinDuration(t, want, ends[0].Time, 100*time.Millisecond)
	require.Contains(t, ends[0].Estimated, "hangup_time")
}
