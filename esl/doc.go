// Package esl is kanca's FreeSWITCH source: it reads the event socket
// (mod_event_socket, inbound mode) and turns each event into the
// PBX-neutral input of the call tracker (package cdr).
//
// Decode maps one event as the socket sends it in the "event json" format
// (one JSON object, as in recorded NDJSON traces); DecodeFields maps one
// whose headers are already split (the "event plain" format). Order puts
// events back in Event-Sequence order, which the socket does not keep.
// Source is the live connection: subscribe, decode, reorder, detect a
// dropped connection, reconnect, and reconcile the channels it missed.
package esl
