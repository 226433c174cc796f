package esltest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/follow/sourcetest"
)

const f01 = "../../testdata/esl/f01_inbound_answered_caller_hangup/events.ndjson"

const failsafe = sourcetest.Failsafe

// raw is a bare client that reads frames as they come off the wire.
type raw struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

type frame struct {
	header map[string]string
	body   string
}

func dial(t *testing.T, srv *Server) *raw {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr)
	require.NoError(t, err)
	require.NoError(t, nc.SetDeadline(time.Now().Add(failsafe)))
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *raw) send(cmd string) {
	r.t.Helper()
	_, err := io.WriteString(r.nc, cmd+"\n\n")
	require.NoError(r.t, err)
}

func (r *raw) read() (frame, error) {
	f := frame{header: map[string]string{}}
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return f, fmt.Errorf("bad header %q", line)
		}
		f.header[k] = v
	}
	if n, err := strconv.Atoi(f.header["Content-Length"]); err == nil {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.br, b); err != nil {
			return f, err
		}
		f.body = string(b)
	}
	return f, nil
}

func (r *raw) frame() frame {
	r.t.Helper()
	f, err := r.read()
	require.NoError(r.t, err)
	return f
}

// login reads the greeting and authenticates.
func (r *raw) login(password string) frame {
	r.t.Helper()
	assert.Equal(r.t, "auth/request", r.frame().header["Content-Type"])
	r.send("auth " + password)
	return r.frame()
}

func waitFor(t *testing.T, srv *Server, cond func() bool) {
	t.Helper()
	sourcetest.WaitFor(t, srv.Stage, cond)
}

func TestServerLogin(t *testing.T) {
	srv := NewServer(Options{Password: "right"})
	t.Cleanup(srv.Close)

	c := dial(t, srv)
	reply := c.login("wrong")
	assert.Equal(t, "command/reply", reply.header["Content-Type"])
	assert.Equal(t, "-ERR invalid", reply.header["Reply-Text"])
	bye := c.frame()
	assert.Equal(t, "text/disconnect-notice", bye.header["Content-Type"])
	_, err := c.read()
	assert.Error(t, err, "closed after a wrong password")

	c = dial(t, srv)
	assert.Equal(t, "+OK accepted", c.login("right").header["Reply-Text"])
	c.send("bogus")
	assert.Equal(t, "-ERR command not found", c.frame().header["Reply-Text"])
	c.send("event plain ALL")
	assert.True(t, strings.HasPrefix(c.frame().header["Reply-Text"], "-ERR"))
	c.send("event json")
	assert.Equal(t, "-ERR no keywords supplied", c.frame().header["Reply-Text"])
	c.send("api status")
	status := c.frame()
	assert.Equal(t, "api/response", status.header["Content-Type"])
	assert.Regexp(t, `^UP 0 years, 0 days, .*\nFreeSWITCH \(Version 1\.10\.\d+ .*\) is ready\n`, status.body)
	c.send("api nosuch thing")
	assert.Equal(t, "-ERR nosuch Command not found!\n", c.frame().body)
	c.send("api show channels as json")
	assert.Equal(t, "{\"row_count\": 0}\n", c.frame().body)
	c.send("exit")
	assert.Equal(t, "+OK bye", c.frame().header["Reply-Text"])
	assert.Equal(t, "text/disconnect-notice", c.frame().header["Content-Type"])

	assert.Equal(t, 2, srv.Attempts())
	assert.Equal(t, 1, srv.Connections())
	assert.Equal(t, 1, srv.Listings())
}

// liveAfter computes, independently of the server, which channels a
// prefix of a recording leaves alive, in creation order.
func liveAfter(t *testing.T, events [][]byte) []string {
	var live []string
	for _, e := range events {
		var h struct {
			Name string `json:"Event-Name"`
			ID   string `json:"Unique-ID"`
		}
		require.NoError(t, json.Unmarshal(e, &h))
		switch h.Name {
		case "CHANNEL_CREATE":
			live = append(live, h.ID)
		case "CHANNEL_DESTROY":
			for i, id := range live {
				if id == h.ID {
					live = append(live[:i], live[i+1:]...)
					break
				}
			}
		}
	}
	return live
}

// The subscription filters what is sent; a drop cuts every client off and
// lives through the gap, whose events shape the channel list.
func TestServerStreamsDropsAndLists(t *testing.T) {
	events, err := LoadNDJSON(f01)
	require.NoError(t, err)
	const n, gap = 30, 3 // the call is answered, bridged in the gap, not yet hung up
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.DropAfter(n, gap)
	srv.Play(events...)

	c := dial(t, srv)
	c.login("ClueCon")
	c.send("event json CHANNEL_CREATE CHANNEL_DESTROY CUSTOM menu::enter")
	assert.Equal(t, "+OK event listener enabled json", c.frame().header["Reply-Text"])
	var names []string
	for {
		f, err := c.read()
		if err != nil {
			break
		}
		require.Equal(t, "text/event-json", f.header["Content-Type"])
		var e struct {
			Name string `json:"Event-Name"`
		}
		require.NoError(t, json.Unmarshal([]byte(f.body), &e))
		names = append(names, e.Name)
	}
	assert.Equal(t, []string{"CHANNEL_CREATE", "CHANNEL_CREATE"}, names, "only what was asked for, up to the drop")
	assert.Equal(t, n+gap, srv.Pos())

	want := liveAfter(t, events[:n+gap])
	require.Len(t, want, 2)
	assert.Equal(t, want, srv.LiveChannels())
	c = dial(t, srv)
	c.login("ClueCon")
	c.send("api show channels as json")
	var list struct {
		RowCount int                 `json:"row_count"`
		Rows     []map[string]string `json:"rows"`
	}
	body := c.frame().body
	require.NoError(t, json.Unmarshal([]byte(body), &list), body)
	require.Equal(t, 2, list.RowCount)
	require.Len(t, list.Rows, 2)
	assert.True(t, strings.HasPrefix(body, `{"row_count":2,"rows":[{"uuid":"`+want[0]+`","direction":"inbound","created":"2026-11-22 12:45:53",`), body)
	a, b := list.Rows[0], list.Rows[1]
	assert.Len(t, a, len(columns))
	assert.Equal(t, "fs-capture", a["hostname"])
	assert.Equal(t, "ACTIVE", a["callstate"])
	assert.Equal(t, a["uuid"], a["call_uuid"], "bridged: the A-leg carries its own id")
	assert.Equal(t, "905321234567", a["cid_num"])
	assert.Equal(t, "908508850000", a["dest"])
	assert.Equal(t, "908508850000", a["initial_dest"])
	assert.Equal(t, "1795351553", a["created_epoch"])
	assert.Equal(t, "outbound", b["direction"])
	assert.Equal(t, a["uuid"], b["call_uuid"], "the B-leg carries its A-leg's id")
	assert.Equal(t, "1000", b["dest"])

	// The next subscriber resumes after the gap and sees the call end.
	c.send("event json ALL")
	assert.Equal(t, "+OK event listener enabled json", c.frame().header["Reply-Text"])
	for range events[n+gap:] {
		assert.Equal(t, "text/event-json", c.frame().header["Content-Type"])
	}
	waitFor(t, srv, func() bool { return len(srv.LiveChannels()) == 0 })
	c.send("api show channels as json")
	assert.Equal(t, "{\"row_count\": 0}\n", c.frame().body)
}

// A hung server greets nobody and answers nothing until it resumes.
func TestServerHangs(t *testing.T) {
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	c := dial(t, srv)
	c.login("ClueCon")
	srv.Hang(0)
	c.send("api status")
	late := dial(t, srv)
	waitFor(t, srv, func() bool { return srv.Attempts() == 2 })
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err := c.read()
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "no answer while hung")

	srv.Resume()
	require.NoError(t, c.nc.SetReadDeadline(time.Now().Add(failsafe)))
	c.br = bufio.NewReader(c.nc)
	assert.Equal(t, "api/response", c.frame().header["Content-Type"])
	assert.Equal(t, "+OK accepted", late.login("ClueCon").header["Reply-Text"])
}

// "show calls as json" lists the bridged pairs the script's events leave:
// after each event of a pickup (the picker's leg bridged to the caller's
// as the pair's A), a row per channel that is no pair's B, carrying its B
// leg's columns while CHANNEL_BRIDGE holds and until the unbridge or a
// leg's end, as the core database's calls table and basic_calls view do.
func TestServerListsCallsAsBridgedPairs(t *testing.T) {
	events, err := LoadNDJSON("../../testdata/esl/g03_pickup_1001_intercepts_call_ringing_1000/events.ndjson")
	require.NoError(t, err)
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.Play(events...)
	c := dial(t, srv)
	c.login("ClueCon")
	pairs := map[string]string{} // A -> B, read from the events apart from the fake
	bridged := 0
	for i, raw := range events {
		srv.LiveThrough(1)
		var all map[string]any
		require.NoError(t, json.Unmarshal(raw, &all))
		e := map[string]string{}
		for k, v := range all {
			if s, ok := v.(string); ok {
				e[k] = s
			}
		}
		switch e["Event-Name"] {
		case "CHANNEL_BRIDGE":
			pairs[e["Bridge-A-Unique-ID"]] = e["Bridge-B-Unique-ID"]
			bridged++
		case "CHANNEL_UNBRIDGE", "CHANNEL_DESTROY":
			for a, b := range pairs {
				if id := e["Unique-ID"]; a == id || b == id || a == e["Caller-Unique-ID"] {
					delete(pairs, a)
				}
			}
		}
		c.send("api show calls as json")
		body := c.frame().body
		var list struct {
			RowCount int                 `json:"row_count"`
			Rows     []map[string]string `json:"rows"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &list), body)
		require.Equal(t, list.RowCount, len(list.Rows))
		got := map[string]string{}
		for _, r := range list.Rows {
			require.Len(t, r, len(callColumns))
			if r["b_uuid"] != "" {
				got[r["uuid"]] = r["b_uuid"]
				assert.Equal(t, "inbound", r["b_direction"], "the caller, picked up")
			}
		}
		live := srv.LiveChannels()
		assert.Equal(t, len(live)-len(got), list.RowCount, "after event %d: a row per channel but the B legs", i)
		assert.Equal(t, pairs, got, "after event %d (%s)", i, e["Event-Name"])
	}
	assert.Equal(t, 1, bridged)
	assert.Empty(t, pairs)
}
