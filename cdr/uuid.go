package cdr

import (
	"crypto/sha1"
	"encoding/hex"
)

// namespace is kanca's own UUID namespace for name-based (version 5) ids.
var namespace = [16]byte{0x6b, 0x61, 0x6e, 0x63, 0x61, 0x2d, 0x4c, 0x63, 0x82, 0x61, 0x6c, 0x6c, 0x2d, 0x69, 0x64, 0x73}

// CallUUID derives a call's webhook uuid from the PBX's entity id and the
// call's linked id. Deriving instead of generating keeps the uuid the same
// when kanca restarts mid-call, and distinct across PBX servers that happen
// to reuse linked ids.
func CallUUID(server, linkedID string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(server))
	h.Write([]byte{0})
	h.Write([]byte(linkedID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
