package esl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cdr/cdrtest"
)

// FuzzTracker feeds arbitrary events, one per line, through the event
// socket's decoder and the tracker, and encodes whatever comes out: nothing
// may panic, and every event of a call must carry the next sequence number.
// ARI's frames have the same target in replay; FreeSWITCH's inputs take
// paths of their own through the tracker (bridges by uuid, B legs named by
// their originator, application names, causes by name).
func FuzzTracker(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "esl", "[fg]*", "events.ndjson"))
	cdrtest.AddWindows(f, files, 12, "f04_")
	f.Fuzz(func(t *testing.T, stream []byte) {
		cdrtest.Feed(t, stream, func(event []byte) (cdr.Input, bool, error) {
			in, ok, err := Decode(event)
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error does not wrap ErrMalformed: %v", err)
			}
			return in, ok, err
		})
	})
}

// FuzzReadMessage reads arbitrary bytes as what the event socket sends:
// nothing may panic, a message read has a body of exactly its
// Content-Length, and a framing error says so.
func FuzzReadMessage(f *testing.F) {
	event := []byte(`{"Event-Name":"HEARTBEAT","Event-Sequence":"7"}`)
	f.Add([]byte("Content-Type: auth/request\n\n"))
	f.Add([]byte("Content-Type: command/reply\nReply-Text: +OK accepted\n\n"))
	f.Add([]byte("Content-Type: api/response\nContent-Length: 3\n\n+OK\n\nContent-Type: text/disconnect-notice\nContent-Length: 0\n\n"))
	f.Add([]byte(fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-json\n\n%s", len(event), event)))
	f.Add([]byte("Content-Type: text/event-json\r\nContent-Length: 2\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), maxLine)
		for range 64 {
			m, err := readMessage(br)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errFraming) {
					t.Fatalf("error is neither the end of the bytes nor a framing error: %v", err)
				}
				return
			}
			if cl, ok := m.header["Content-Length"]; ok {
				if n, _ := strconv.Atoi(cl); n != len(m.body) {
					t.Fatalf("Content-Length %s, body of %d bytes", cl, len(m.body))
				}
			} else if m.body != nil {
				t.Fatalf("a body of %d bytes without a Content-Length", len(m.body))
			}
		}
	})
}
