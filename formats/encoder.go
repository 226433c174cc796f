package formats

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// isoLayout always prints a numeric offset, so UTC reads +00:00 rather than
// Z: the spec shows the PBX's offset and receivers parse one shape.
const isoLayout = "2006-01-02T15:04:05-07:00"

// maxIntDigits bounds the numbers sent as integers: every 18-digit value fits
// in an int64, so PHP's json_decode reads it back as the same integer rather
// than a rounded float.
const maxIntDigits = 18

// encoder writes one event as JSON or as a PHP-style form. It is one struct
// with a flag rather than an interface, and holds no pointers into itself,
// so that it lives on the stack and the body is the only allocation.
type encoder struct {
	b                []byte
	form             bool
	loc              *time.Location
	numbersAsStrings bool

	// JSON: no comma is due before the next member.
	first bool

	// Form: the escaped key path of the current object, e.g.
	// cdr%5Bcallflow%5D%5B0%5D, and where each level starts in it. The
	// deepest path kanca writes is under 50 bytes, even with a 20-digit index.
	path    [64]byte
	pathLen int
	marks   [4]int
	depth   int
}

// key starts a member of the current object.
func (e *encoder) key(name string) {
	if e.form {
		if len(e.b) > 0 {
			e.b = append(e.b, '&')
		}
		e.b = e.appendName(e.b, name)
		e.b = append(e.b, '=')
		return
	}
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
}

// appendName appends the form key of member name in the current object.
func (e *encoder) appendName(b []byte, name string) []byte {
	if e.pathLen == 0 {
		return append(b, name...)
	}
	b = append(b, e.path[:e.pathLen]...)
	b = append(b, "%5B"...)
	b = append(b, name...)
	return append(b, "%5D"...)
}

// beginObject opens the root object (name "") or member name of the
// current one.
func (e *encoder) beginObject(name string) {
	if e.form {
		if name != "" {
			e.push(name)
		}
		return
	}
	if name != "" {
		e.key(name)
	}
	e.b = append(e.b, '{')
	e.first = true
}

func (e *encoder) endObject() {
	if e.form {
		if e.depth > 0 {
			e.pop()
		}
		return
	}
	e.b = append(e.b, '}')
	e.first = false
}

// beginArray opens member name as a list of n objects. A form has no way to
// spell an empty list, so an empty one sends no key at all, as PHP's own
// http_build_query does.
func (e *encoder) beginArray(name string) {
	if e.form {
		e.push(name)
		return
	}
	e.key(name)
	e.b = append(e.b, '[')
	e.first = true
}

func (e *encoder) endArray() {
	if e.form {
		e.pop()
		return
	}
	e.b = append(e.b, ']')
	e.first = false
}

// beginElement opens the i-th object of the current list; endObject closes it.
func (e *encoder) beginElement(i int) {
	if e.form {
		var digits [20]byte
		e.mark()
		e.addPath([]byte("%5B"))
		e.addPath(strconv.AppendInt(digits[:0], int64(i), 10))
		e.addPath([]byte("%5D"))
		return
	}
	if i > 0 {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, '{')
	e.first = true
}

// element writes the i-th string of the current list (a list of scalars).
func (e *encoder) element(i int, s string) {
	if e.form {
		if len(e.b) > 0 {
			e.b = append(e.b, '&')
		}
		e.b = append(e.b, e.path[:e.pathLen]...)
		e.b = append(e.b, "%5B"...)
		e.b = strconv.AppendInt(e.b, int64(i), 10)
		e.b = append(e.b, "%5D="...)
		e.b = appendFormValue(e.b, s)
		return
	}
	if i > 0 {
		e.b = append(e.b, ',')
	}
	e.b = appendJSONString(e.b, s)
}

func (e *encoder) push(name string) {
	e.mark()
	if e.pathLen == 0 {
		e.addPath([]byte(name))
		return
	}
	e.addPath([]byte("%5B"))
	e.addPath([]byte(name))
	e.addPath([]byte("%5D"))
}

func (e *encoder) mark() {
	e.marks[e.depth] = e.pathLen
	e.depth++
}

func (e *encoder) addPath(s []byte) {
	n := copy(e.path[e.pathLen:], s)
	if n < len(s) {
		panic("formats: form key path longer than the encoder holds")
	}
	e.pathLen += n
}

func (e *encoder) pop() {
	e.depth--
	e.pathLen = e.marks[e.depth]
}

func (e *encoder) str(s string) {
	if e.form {
		e.b = appendFormValue(e.b, s)
		return
	}
	e.b = appendJSONString(e.b, s)
}

// number writes a phone number, extension or group: an integer when it reads
// back as the same integer, otherwise the string it is.
func (e *encoder) number(s string) {
	if e.numbersAsStrings || !isInteger(s) {
		e.str(s)
		return
	}
	e.b = append(e.b, s...)
}

func (e *encoder) int(n int64) {
	e.b = strconv.AppendInt(e.b, n, 10)
}

func (e *encoder) bool(v bool) {
	switch {
	case e.form && v:
		e.b = append(e.b, '1')
	case e.form:
		e.b = append(e.b, '0')
	case v:
		e.b = append(e.b, "true"...)
	default:
		e.b = append(e.b, "false"...)
	}
}

// null is JSON null; in a form it is the empty value key() already wrote.
func (e *encoder) null() {
	if !e.form {
		e.b = append(e.b, "null"...)
	}
}

// micros writes t as microseconds since the epoch; a zero time is unknown,
// not 1 January of year 1, so it is null.
func (e *encoder) micros(t time.Time) {
	if t.IsZero() {
		e.null()
		return
	}
	e.int(t.UnixMicro())
}

// time writes t in ISO-8601 at second precision in the hook's location.
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.null()
		return
	}
	t = t.In(e.loc)
	if e.form {
		var buf [32]byte
		e.b = appendFormBytes(e.b, t.AppendFormat(buf[:0], isoLayout))
		return
	}
	e.b = append(e.b, '"')
	e.b = t.AppendFormat(e.b, isoLayout)
	e.b = append(e.b, '"')
}

// isInteger reports whether s prints as a JSON integer that decodes back to
// s: digits only, no leading zero (0532... is a dialled string, not a
// number), and short enough for an int64.
func isInteger(s string) bool {
	if s == "" || len(s) > maxIntDigits || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s. Invalid UTF-8 bytes become U+FFFD one by one,
// as in the form encoding, so both bodies carry the same text.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFormValue escapes s as net/url's QueryEscape does (space as +), which
// PHP's parser decodes; invalid UTF-8 becomes U+FFFD as in appendJSONString.
func appendFormValue(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			b = appendFormByte(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "%EF%BF%BD"...)
			i++
			continue
		}
		for j := i; j < i+size; j++ {
			b = appendFormByte(b, s[j])
		}
		i += size
	}
	return b
}

// appendFormBytes escapes ASCII text that needs no UTF-8 repair.
func appendFormBytes(b, s []byte) []byte {
	for _, c := range s {
		b = appendFormByte(b, c)
	}
	return b
}

func appendFormByte(b []byte, c byte) []byte {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
		c == '-', c == '_', c == '.', c == '~':
		return append(b, c)
	case c == ' ':
		return append(b, '+')
	}
	return append(b, '%', upperHex[c>>4], upperHex[c&0xf])
}

const upperHex = "0123456789ABCDEF"
