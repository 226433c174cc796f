package books

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// parseXMLLeg reads a leg's record as mod_xml_cdr writes it
// (switch_ivr_generate_xml_cdr): a <cdr switchname="..."> root holding
// <variables>, <app_log> and one <callflow profile_index="n"> per caller
// profile, into the record mod_json_cdr's JSON is read into.
func parseXMLLeg(b []byte) (fsLeg, error) {
	var r fsRecord
	if err := xml.Unmarshal(b, &r); err != nil {
		// A variable's name becomes its element's name as it is, and
		// FreeSWITCH allows names XML does not (set api_hangup_hook,
		// ^^,default_language, 1234): renamed, the record reads.
		r = fsRecord{}
		if err2 := xml.Unmarshal(repairXMLNames(b), &r); err2 != nil {
			return fsLeg{}, err
		}
	}
	return r.leg()
}

// xmlTag is a tag of a mod_xml_cdr record: every '<' starts one (text
// and attribute values are escaped, variables' values URL-encoded).
var xmlTag = regexp.MustCompile(`<(/?)([^<>]*)>`)

// wellFormedTag is a tag's inside that XML reads: a name, attributes,
// and an end ('/') for an empty element.
var wellFormedTag = regexp.MustCompile(`^[A-Za-z_][\w.:-]*(\s+[A-Za-z_][\w.:-]*="[^"]*")*\s*/?$`)

// repairXMLNames renames the elements whose names XML refuses: each
// character it refuses becomes '_', and a name that cannot begin so gets
// a leading '_'. The declaration (<?xml ...?>) and comments are kept.
func repairXMLNames(b []byte) []byte {
	return xmlTag.ReplaceAllFunc(b, func(tag []byte) []byte {
		m := xmlTag.FindSubmatch(tag)
		inside := string(m[2])
		if strings.HasPrefix(inside, "?") || strings.HasPrefix(inside, "!") || wellFormedTag.MatchString(inside) {
			return tag
		}
		end := ""
		if len(m[1]) == 0 && strings.HasSuffix(inside, "/") {
			inside, end = strings.TrimSuffix(inside, "/"), "/"
		}
		name := []byte(inside)
		for i, c := range name {
			if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				name[i] = '_'
			}
		}
		if len(name) == 0 || name[0] == '-' || name[0] == '.' || name[0] >= '0' && name[0] <= '9' {
			name = append([]byte{'_'}, name...)
		}
		return []byte("<" + string(m[1]) + string(name) + end + ">")
	})
}

// UnmarshalXML reads <variables>: one element per variable, its value
// URL-encoded (switch_ivr_set_xml_chan_var encodes every value), an array
// variable repeated once per value. An array is kept as the event socket
// and mod_json_cdr show it: ARRAY::first|:second.
func (v *fsVariables) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m := fsVariables{}
	arrays := map[string][]string{}
	for {
		tok, err := d.Token()
		if err != nil {
			return fmt.Errorf("variables: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			var s string
			if err := d.DecodeElement(&s, &t); err != nil {
				return fmt.Errorf("variables: %s: %w", t.Name.Local, err)
			}
			name, val := t.Name.Local, urlDecode(s)
			arrays[name] = append(arrays[name], val)
			if n := arrays[name]; len(n) > 1 {
				val = "ARRAY::" + strings.Join(n, "|:")
			}
			m[name] = val
		case xml.EndElement:
			*v = m
			return nil
		}
	}
}

// urlDecode undoes switch_url_encode as switch_url_decode does: %XX only,
// a '+' is itself (the encoder writes a '+' as %2B).
func urlDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// simpleXMLToXML turns a mod_xml_cdr record that FusionPBX stored as JSON
// back into its XML. FusionPBX keeps json_encode of the SimpleXMLElement
// it parsed (app/xml_cdr/resources/classes/xml_cdr.php): an element of
// text alone is a string, an empty one {}, attributes are under
// "@attributes", a repeated element is an array, and the root's name is
// dropped (mod_xml_cdr's is <cdr>). Values stay URL-encoded, as FusionPBX
// reads them with urldecode.
func simpleXMLToXML(b []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out bytes.Buffer
	if err := simpleXMLElement(d, &out, "cdr", nil); err != nil {
		return nil, fmt.Errorf("FusionPBX JSON: %w", err)
	}
	return out.Bytes(), nil
}

// simpleXMLElement writes the JSON value d is at as element name (an
// array as the element repeated).
func simpleXMLElement(d *json.Decoder, w *bytes.Buffer, name string, tok json.Token) error {
	var err error
	if tok == nil {
		if tok, err = d.Token(); err != nil {
			return err
		}
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			for d.More() {
				if err := simpleXMLElement(d, w, name, nil); err != nil {
					return err
				}
			}
			_, err := d.Token() // ]
			return err
		case '{':
			var attrs [][2]string
			var body bytes.Buffer
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				if key == "@attributes" {
					if attrs, err = simpleXMLAttributes(d); err != nil {
						return err
					}
					continue
				}
				if !isXMLName(key) {
					// PHP keeps a text node beside attributes under "0".
					v, err := d.Token()
					if err != nil {
						return err
					}
					if s, ok := v.(string); ok {
						xml.EscapeText(&body, []byte(s))
					} else if err := skipJSON(d, v); err != nil {
						return err
					}
					continue
				}
				if err := simpleXMLElement(d, &body, key, nil); err != nil {
					return err
				}
			}
			if _, err := d.Token(); err != nil { // }
				return err
			}
			w.WriteString("<" + name)
			for _, a := range attrs {
				w.WriteString(" " + a[0] + `="`)
				xml.EscapeText(w, []byte(a[1]))
				w.WriteString(`"`)
			}
			w.WriteString(">")
			w.Write(body.Bytes())
			w.WriteString("</" + name + ">")
			return nil
		}
		return fmt.Errorf("unexpected %v", t)
	case string:
		w.WriteString("<" + name + ">")
		xml.EscapeText(w, []byte(t))
		w.WriteString("</" + name + ">")
	case json.Number:
		w.WriteString("<" + name + ">" + t.String() + "</" + name + ">")
	case bool:
		w.WriteString("<" + name + ">" + strconv.FormatBool(t) + "</" + name + ">")
	case nil:
		w.WriteString("<" + name + "></" + name + ">")
	}
	return nil
}

// simpleXMLAttributes reads an "@attributes" object.
func simpleXMLAttributes(d *json.Decoder) ([][2]string, error) {
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	var attrs [][2]string
	for k, v := range m {
		if isXMLName(k) {
			attrs = append(attrs, [2]string{k, fmt.Sprint(v)})
		}
	}
	slices.SortFunc(attrs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return attrs, nil
}

// skipJSON skips the rest of the value tok opened.
func skipJSON(d *json.Decoder, tok json.Token) error {
	if t, ok := tok.(json.Delim); ok && (t == '{' || t == '[') {
		for depth := 1; depth > 0; {
			t, err := d.Token()
			if err != nil {
				return err
			}
			switch t {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
	}
	return nil
}

// isXMLName reports whether s may name an element or attribute as kanca
// writes it back (FusionPBX's own fixes drop the names XML refuses).
func isXMLName(s string) bool {
	if s == "" || !(s[0] == '_' || s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
	})
}

// parseFusionLeg reads a leg's record as FusionPBX stored it: its JSON
// (json_encode of the parsed XML) or, with cdr format xml, the XML itself.
func parseFusionLeg(b []byte) (fsLeg, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '<' {
		return parseXMLLeg(b)
	}
	x, err := simpleXMLToXML(b)
	if err != nil {
		return fsLeg{}, err
	}
	return parseXMLLeg(x)
}
