// Package faults holds the tests that break a running kanca binary: kill -9
// and SIGTERM under load, a receiver that goes away, and check that no call
// is lost. They build cmd/kanca once, run it against a fake Asterisk and a
// receiver on loopback, and read what the receiver got.
package faults
