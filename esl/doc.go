// Package esl is kanca's FreeSWITCH source: it reads the event socket
// (mod_event_socket, inbound mode) and turns each event into the
// PBX-neutral input of the call tracker (package cdr).
//
// Decode maps one event as the socket sends it in the "event json" format
// (one JSON object, as in recorded NDJSON traces); DecodeFields maps one
// whose headers are already split (the "event plain" format). Order puts
// events back in Event-Sequence order, which the socket does not keep.
// Conn is a small inbound client of the socket's protocol (commands with a
// timeout, api and bgapi); Source is FreeSWITCH's adapter of a
// follow.Follower, built on it: subscribe, decode, reorder, list channels
// and probe with "api status", while the Follower reconnects and
// reconciles the channels it missed. Commands run on the Source's own
// connection (Source.API, Source.BgAPI).
//
// The client is written on net rather than github.com/percipia/eslgo:
// eslgo v1.4.1 races in its own code (Conn.close against its disconnectLoop
// and authLoop map reads, so go test -race fails on every reconnect) and
// gives no callback when TCP just drops.
package esl
