package ari

import (
	"bytes"
	"encoding/json"

	"github.com/kanca/kanca/cdr"
)

// typeVarset is the event ari/v5 names ari.Events.ChannelVarset, spelled
// here so the prefilter compares bytes without a lookup.
const typeVarset = "ChannelVarset"

// Unread says whether data is a ChannelVarset frame of a variable reads
// says no to, and returns its type ("" when it did not get that far).
// It reads only the frame's top-level "type" and "variable" members,
// skipping the rest (the channel snapshot is most of a frame's bytes)
// without decoding it: most of what Asterisk sends during a call is
// ChannelVarset, and the tracker reads few variables
// (cdr.Config.ReadsVariable). Anything it cannot read with certainty
// (not an object, an escape in a name it needs) is not unread: Decode
// then has the last word, errors included.
func Unread(data []byte, reads func(string) bool) (typ string, unread bool) {
	var variable string
	var haveVar bool
	s := scanner{b: data}
	s.space()
	if !s.eat('{') {
		return "", false
	}
	for {
		s.space()
		if s.eat('}') {
			break
		}
		key, ok := s.plainString()
		if !ok {
			return typ, false
		}
		s.space()
		if !s.eat(':') {
			return typ, false
		}
		s.space()
		switch key {
		case "type", "variable":
			v, ok := s.plainString()
			if !ok {
				return typ, false
			}
			if key == "type" {
				if typ != "" || v != typeVarset {
					// Another event, or a type given twice: Decode's.
					return v, false
				}
				typ = v
			} else {
				if haveVar {
					return typ, false
				}
				variable, haveVar = v, true
			}
		default:
			if !s.skip() {
				return typ, false
			}
		}
		s.space()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			break
		}
		return typ, false
	}
	s.space()
	if s.i != len(s.b) || typ == "" || !haveVar {
		return typ, false
	}
	return typ, !reads(variable)
}

// DecodeReading is Decode behind Unread: what replay uses, so that it
// decodes what the live Source does.
func DecodeReading(reads func(string) bool) func([]byte) (cdr.Input, bool, error) {
	return func(data []byte) (cdr.Input, bool, error) {
		if _, unread := Unread(data, reads); unread {
			return cdr.Input{}, false, nil
		}
		return Decode(data)
	}
}

// scanner walks JSON bytes without building values.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainString reads a string without escapes; one with an escape is
// decoded properly, which is rare enough not to matter.
func (s *scanner) plainString() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	start := s.i
	end := bytes.IndexByte(s.b[start:], '"')
	if end < 0 {
		return "", false
	}
	raw := s.b[start : start+end]
	if bytes.IndexByte(raw, '\\') < 0 {
		for _, c := range raw {
			if c < 0x20 {
				return "", false
			}
		}
		s.i = start + end + 1
		return string(raw), true
	}
	s.i = start - 1
	if !s.skipString() {
		return "", false
	}
	var v string
	if json.Unmarshal(s.b[start-1:s.i], &v) != nil {
		return "", false
	}
	return v, true
}

func (s *scanner) skipString() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '\\':
			s.i += 2
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	return false
}

// skip passes over one value, checking that its brackets match and its
// strings end, not its numbers and literals: a frame whose scalars are
// broken but whose variable the tracker does not read is dropped like a
// sound one.
func (s *scanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.skipString()
	case '{', '[':
		var open [32]byte // deeper than any ARI frame: left to Decode
		depth := 0
		for s.i < len(s.b) {
			switch c := s.b[s.i]; c {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				if depth == len(open) {
					return false
				}
				open[depth] = c + 2 // '{'+2 is '}', '['+2 is ']'
				depth++
			case '}', ']':
				if depth == 0 || open[depth-1] != c {
					return false
				}
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default: // number, true, false, null
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return false
	}
}
