package esl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// FuzzTracker feeds arbitrary events, one per line, through the event
// socket's decoder and the tracker, and encodes whatever comes out: nothing
// may panic, and every event of a call must carry the next sequence number.
// ARI's frames have the same target in replay; FreeSWITCH's inputs take
// paths of their own through the tracker (bridges by uuid, B legs named by
// their originator, application names, causes by name).
func FuzzTracker(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("..", "testdata", "esl", "f*"))
	if len(dirs) == 0 {
		f.Fatal("no recordings in testdata/esl")
	}
	// Windows of a few consecutive events seed a call's start, middle and
	// end; the shortest whole call seeds its hangups too.
	const window = 12
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "events.ndjson"))
		if err != nil {
			f.Fatal(err)
		}
		if strings.Contains(d, "f04_") {
			f.Add(data)
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i := 0; i < len(lines); i += window {
			f.Add(bytes.Join(lines[i:min(i+window, len(lines))], nil))
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		tr := cdr.NewTracker(cdr.DefaultConfig())
		seq := map[string]int{}
		for _, line := range bytes.Split(stream, []byte("\n")) {
			in, ok, err := Decode(line)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("decode error does not wrap ErrMalformed: %v", err)
				}
				continue
			}
			if !ok {
				continue
			}
			for _, ev := range tr.Handle(in) {
				if ev.Seq != seq[ev.CallID]+1 {
					t.Fatalf("call %s: event %s has seq %d after %d", ev.CallID, ev.Type, ev.Seq, seq[ev.CallID])
				}
				seq[ev.CallID] = ev.Seq
				for _, f := range []formats.Format{formats.JSON, formats.Form} {
					if _, _, err := formats.Encode(f, ev, formats.Options{}); err != nil {
						t.Fatalf("encode %s: %v", ev.Type, err)
					}
				}
			}
		}
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
