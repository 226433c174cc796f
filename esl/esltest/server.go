// Package esltest is a fake FreeSWITCH event socket (mod_event_socket,
// inbound mode) for tests and demos. It replays a script of recorded
// events ("event json" objects, typically loaded with LoadNDJSON) to the
// connections subscribed to them, keeps the channel table the script
// implies, as FreeSWITCH's core database would, and can be told to cut
// its clients off, carry on through a gap with nobody listening, refuse a
// password or hang.
//
// It speaks what kanca uses: the auth/request greeting and "auth", "event
// json NAMES [CUSTOM SUBCLASSES]" (and ALL), "noevents", "exit", the API
// commands "status", "show channels as json", "show calls as json",
// "uuid_dump UUID json" and "uuid_buglist UUID", by
// "api" or "bgapi", framed as mod_event_socket frames them; and it places
// calls: "originate", "uuid_broadcast" and "uuid_kill" (see OnOriginate). Its channel
// table can lag the events (Options.ListLag), as FreeSWITCH's core
// database, written by its own thread, does.
package esltest

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kanca/kanca/follow/followtest"
)

// Options configures a fake event socket. The zero value is usable.
type Options struct {
	// Password is the event_socket.conf.xml password accepted; default
	// "ClueCon", FreeSWITCH's own default.
	Password string
	// Pace is the pause before each event is sent; zero sends as fast as
	// the clients read.
	Pace time.Duration
	// APIDelay is the pause before each API command is answered, as on a
	// busy switch: events keep flowing meanwhile.
	APIDelay time.Duration
	// ListLag is how long after an event is sent (or lived through) the
	// channel table shows it: "show channels" answers with the table as
	// the events older than that left it. uuid_dump reads the session
	// itself and does not lag.
	ListLag time.Duration
}

// LoadNDJSON reads a recording of events, one JSON object a line, plain or
// gzip-compressed: the same NDJSON as ARI recordings.
func LoadNDJSON(path string) ([][]byte, error) { return followtest.LoadNDJSON(path) }

// Server is a fake FreeSWITCH event socket on 127.0.0.1. The script, its
// drops and gaps, hangs and the counters are its Stage's.
type Server struct {
	*followtest.Stage
	// Addr is host:port, as a kanca event socket address.
	Addr string

	ln      net.Listener
	opts    Options
	started time.Time
	wg      sync.WaitGroup

	// Guarded by the Stage's lock.
	password string
	channels followtest.Channels[map[string]string] // the core database's channels table, by uuid
	calls    []callRow                              // the core database's calls table: bridged pairs
	lagging  []lagged                               // events the table has yet to show (ListLag)
	sessions map[string]map[string]string           // each live session's headers and variables, for uuid_dump
	records  map[string][]string                    // the files each live session is recorded to, for uuid_buglist
	clients  map[*client]bool
	// sentCur counts the events played to the client that subscribed
	// last, since it did (SentToCurrent).
	sentCur int
	jobs    int            // background jobs taken
	asked   map[string]int // API commands answered, by their first word

	orig origin // originated legs, under its own lock
}

// callRow is a row of the core database's calls table: a bridge, written
// at CHANNEL_BRIDGE and deleted at the unbridge or either leg's
// destruction (switch_core_sqldb.c).
type callRow struct {
	callUUID, caller, callee string
	epoch                    string
}

// lagged is an event the channel table shows from due on.
type lagged struct {
	due time.Time
	raw []byte
}

// client is one connection and what it subscribed to.
type client struct {
	nc  net.Conn
	wmu sync.Mutex // one frame at a time: events and answers interleave whole

	// Guarded by the Stage's lock.
	subscribed bool
	all        bool
	names      map[string]bool
	subclasses map[string]bool
}

// NewServer starts a fake event socket on 127.0.0.1. Close it when done.
// Like httptest.NewServer it panics when it cannot listen.
func NewServer(opts Options) *Server {
	if opts.Password == "" {
		opts.Password = "ClueCon"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("esltest: listen: %v", err))
	}
	s := &Server{
		Addr:     ln.Addr().String(),
		ln:       ln,
		opts:     opts,
		started:  time.Now(),
		password: opts.Password,
		clients:  map[*client]bool{},
		sessions: map[string]map[string]string{},
		records:  map[string][]string{},
		asked:    map[string]int{},
	}
	s.Stage = followtest.NewStage(followtest.StageOptions{Pace: opts.Pace, Apply: s.apply})
	s.wg.Add(2)
	go s.accept()
	go s.play()
	return s
}

// Close cuts every client off and stops the server.
func (s *Server) Close() {
	if !s.Stage.Close(func() {
		for c := range s.clients {
			c.nc.Close()
		}
	}) {
		return
	}
	s.ln.Close()
	s.wg.Wait()
}

// SetPassword changes the password accepted from now on, as an operator
// editing event_socket.conf.xml and reloading mod_event_socket would.
func (s *Server) SetPassword(password string) {
	s.Lock()
	defer s.Unlock()
	s.password = password
}

// Clients is how many connections are open now.
func (s *Server) Clients() int {
	s.Lock()
	defer s.Unlock()
	return len(s.clients)
}

// LiveChannels is the uuids of the channels alive at the script's
// position, in creation order.
func (s *Server) LiveChannels() []string {
	s.Lock()
	defer s.Unlock()
	return s.channels.IDs()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &client{nc: nc}
		s.Lock()
		if s.ClosedLocked() {
			s.Unlock()
			nc.Close()
			return
		}
		s.clients[c] = true
		s.AttemptLocked()
		s.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

// frame writes one message: headers, and a body with its Content-Length.
func (c *client) frame(header string, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.frameLocked(header, body)
}

// frameLocked is frame with c.wmu held.
func (c *client) frameLocked(header string, body []byte) error {
	var b strings.Builder
	b.WriteString(header)
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\n", len(body))
	}
	b.WriteString("\n")
	b.Write(body)
	_, err := io.WriteString(c.nc, b.String())
	return err
}

// event writes one event as mod_event_socket does, Content-Length first.
func (c *client) event(raw []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := io.WriteString(c.nc, fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-json\n\n%s", len(raw), raw))
	return err
}

func (c *client) reply(text string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.replyLocked(text)
}

func (c *client) replyLocked(text string) error {
	return c.frameLocked("Content-Type: command/reply\nReply-Text: "+text+"\n", nil)
}

func (c *client) disconnect() {
	_ = c.frame("Content-Type: text/disconnect-notice\n",
		[]byte("Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"))
}

// serve runs one connection as mod_event_socket's listener thread does.
func (s *Server) serve(c *client) {
	defer s.wg.Done()
	defer func() {
		c.nc.Close()
		s.Lock()
		delete(s.clients, c)
		s.NotifyLocked()
		s.Unlock()
	}()
	if !s.Awake() || c.frame("Content-Type: auth/request\n", nil) != nil {
		return
	}
	br := bufio.NewReader(c.nc)
	authed := false
	for {
		cmd, err := readCommand(br)
		if err != nil || !s.Awake() {
			return
		}
		if !authed {
			s.Lock()
			want := s.password
			s.Unlock()
			pass, ok := strings.CutPrefix(cmd, "auth ")
			if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
				_ = c.reply("-ERR invalid")
				c.disconnect()
				return
			}
			authed = true
			s.Lock()
			s.ConnectedLocked(1)
			s.Unlock()
			if c.reply("+OK accepted") != nil {
				return
			}
			continue
		}
		word, rest, _ := strings.Cut(cmd, " ")
		switch strings.ToLower(word) {
		case "event":
			// The reply goes before the first event the subscription
			// lets through, as mod_event_socket's does: the sender's
			// next write to c waits for it.
			c.wmu.Lock()
			err = c.replyLocked(s.subscribe(c, rest))
			c.wmu.Unlock()
		case "noevents":
			s.Lock()
			was := c.subscribed
			c.subscribed, c.all, c.names, c.subclasses = false, false, nil, nil
			s.Unlock()
			if was {
				err = c.reply("+OK no longer listening for events")
			} else {
				err = c.reply("-ERR not listening for events")
			}
		case "api":
			if !s.Pause(context.Background(), s.opts.APIDelay) {
				return
			}
			err = c.frame("Content-Type: api/response\n", []byte(s.api(rest)))
		case "bgapi":
			err = s.bgapi(c, rest)
		case "exit":
			_ = c.reply("+OK bye")
			c.disconnect()
			return
		default:
			err = c.reply("-ERR command not found")
		}
		if err != nil {
			return
		}
	}
}

// readCommand reads one command: its first line, up to the blank line
// that ends it.
func readCommand(br *bufio.Reader) (string, error) {
	var first string
	for n := 0; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if first == "" {
				continue
			}
			return first, nil
		}
		if n > 64 {
			return "", errors.New("command too long")
		}
		if first == "" {
			first = line
		}
	}
}

// subscribe handles "event FORMAT NAMES...": after CUSTOM, words are
// subclasses. Only the json format is spoken here.
func (s *Server) subscribe(c *client, args string) string {
	words := strings.Fields(args)
	if len(words) == 0 || !strings.EqualFold(words[0], "json") {
		return "-ERR esltest speaks the json format only"
	}
	s.Lock()
	defer s.Unlock()
	if c.names == nil {
		c.names, c.subclasses = map[string]bool{}, map[string]bool{}
	}
	keys, custom := 0, false
	for _, w := range words[1:] {
		switch {
		case custom:
			c.subclasses[w] = true
		case strings.EqualFold(w, "ALL"):
			c.all = true
			keys++
		default:
			c.names[strings.ToUpper(w)] = true
			keys++
			custom = strings.EqualFold(w, "CUSTOM")
		}
	}
	if keys == 0 {
		return "-ERR no keywords supplied"
	}
	if !c.subscribed {
		s.sentCur = 0
	}
	c.subscribed = true
	s.NotifyLocked()
	return "+OK event listener enabled json"
}

// SentToCurrent is how many events the client that subscribed last was
// played since it did: beside what the client says it read, how far
// behind it is.
func (s *Server) SentToCurrent() int {
	s.Lock()
	defer s.Unlock()
	return s.sentCur
}

// wants says whether c subscribed to an event of this name and subclass.
func (c *client) wants(name, subclass string) bool {
	if !c.subscribed {
		return false
	}
	if c.all {
		return true
	}
	if name == "CUSTOM" {
		return c.names["CUSTOM"] && c.subclasses[subclass]
	}
	return c.names[name]
}

// Asked is how many API commands named name ("uuid_dump", "show") the
// fake answered.
func (s *Server) Asked(name string) int {
	s.Lock()
	defer s.Unlock()
	return s.asked[name]
}

func (s *Server) api(cmd string) string {
	if f := strings.Fields(cmd); len(f) > 0 {
		s.Lock()
		s.asked[f[0]]++
		s.Unlock()
	}
	switch strings.Join(strings.Fields(cmd), " ") {
	case "status":
		return s.status()
	case "show channels as json":
		s.Lock()
		defer s.Unlock()
		s.WaitSentLocked()
		s.catchUpLocked(time.Now())
		s.ListedLocked()
		return s.channelsJSONLocked()
	case "show calls as json":
		s.Lock()
		defer s.Unlock()
		s.WaitSentLocked()
		s.catchUpLocked(time.Now())
		return s.callsJSONLocked()
	case "originate":
		// mod_commands' answer to originate without arguments.
		return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
	}
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return "-ERR  Command not found!\n"
	}
	if len(f) == 3 && f[0] == "uuid_dump" && f[2] == "json" {
		return s.dump(f[1])
	}
	if len(f) == 2 && f[0] == "uuid_buglist" {
		return s.buglist(f[1])
	}
	switch f[0] {
	case "originate":
		return s.originate(cmd)
	case "uuid_broadcast":
		return s.broadcast(f[1:])
	case "uuid_kill":
		return s.kill(f[1:])
	}
	name, _, _ := strings.Cut(cmd, " ")
	return fmt.Sprintf("-ERR %s Command not found!\n", name)
}

// bgapi takes a background job as mod_event_socket does: the reply names
// its Job-UUID at once; the answer follows as a BACKGROUND_JOB event, for
// those subscribed to it.
func (s *Server) bgapi(c *client, cmd string) error {
	s.Lock()
	s.jobs++
	job := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.jobs)
	s.Unlock()
	if err := c.frame("Content-Type: command/reply\nReply-Text: +OK Job-UUID: "+job+"\nJob-UUID: "+job+"\n", nil); err != nil {
		return err
	}
	if !s.Pause(context.Background(), s.opts.APIDelay) {
		return errors.New("closed")
	}
	name, arg, _ := strings.Cut(cmd, " ")
	bg := map[string]string{"Event-Name": "BACKGROUND_JOB", "Job-UUID": job, "Job-Command": name, "Job-Command-Arg": arg}
	if arg == "" {
		delete(bg, "Job-Command-Arg")
	}
	bg["_body"] = s.api(cmd)
	ev, _ := json.Marshal(bg)
	if name == "originate" {
		// The answer comes once the leg answered or failed, after the
		// leg's own events, to every connection subscribed to
		// BACKGROUND_JOB (switch_event_fire).
		s.Play(ev)
		return nil
	}
	s.Lock()
	wants := c.wants("BACKGROUND_JOB", "")
	s.Unlock()
	if wants {
		return c.event(ev)
	}
	return nil
}

// status answers "status" as FreeSWITCH 1.10 does.
func (s *Server) status() string {
	s.Lock()
	live, created := s.channels.Len(), s.channels.Created()
	s.Unlock()
	up := time.Since(s.started)
	return fmt.Sprintf("UP 0 years, 0 days, %d hours, %d minutes, %d seconds, %d milliseconds, %d microseconds\n"+
		"FreeSWITCH (Version 1.10.12 -release 64bit) is ready\n"+
		"%d session(s) since startup\n"+
		"%d session(s) - peak %d, last 5min %d \n"+
		"0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"+
		"1000 session(s) max\n"+
		"min idle cpu 0.00/99.00\n"+
		"Current Stack Size/Max 240K/8192K\n",
		int(up.Hours()), int(up.Minutes())%60, int(up.Seconds())%60, up.Milliseconds()%1000, up.Microseconds()%1000,
		created, live, live, live)
}

// play sends the script, in order, to every subscribed client, while
// there is one and the server is not hung.
func (s *Server) play() {
	defer s.wg.Done()
	for {
		step, _, raw := s.Next(context.Background(), s.hasSubscriberLocked, func() {
			for c := range s.clients {
				// Gone at once, not when its goroutine notices: the next
				// event must wait for the next subscriber.
				c.nc.Close()
				delete(s.clients, c)
			}
		})
		switch step {
		case followtest.Stop:
			return
		case followtest.Drop:
			continue
		}
		var e struct {
			Name     string `json:"Event-Name"`
			Subclass string `json:"Event-Subclass"`
		}
		_ = json.Unmarshal(raw, &e) // a malformed event goes to those who asked for ALL
		var to []*client
		s.Lock()
		for c := range s.clients {
			if c.wants(e.Name, e.Subclass) {
				to = append(to, c)
			}
		}
		s.Unlock()
		sent := 0
		for _, c := range to {
			// A client that cannot take it is gone; its own goroutine
			// notices.
			if c.event(raw) != nil {
				c.nc.Close()
				continue
			}
			sent++
		}
		if sent > 0 {
			s.Lock()
			s.sentCur++
			s.Unlock()
		}
		s.Sent()
	}
}

func (s *Server) hasSubscriberLocked() bool {
	for c := range s.clients {
		if c.subscribed {
			return true
		}
	}
	return false
}

// columns are the channels table's columns in FreeSWITCH 1.10, in order.
var columns = []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
	"ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec", "read_rate",
	"read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id",
	"presence_data", "accountcode", "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid",
	"sent_callee_name", "sent_callee_num", "initial_cid_name", "initial_cid_num", "initial_ip_addr",
	"initial_dest", "initial_dialplan", "initial_context"}

// channelsJSONLocked answers "show channels as json" with cJSON's
// unformatted output: row_count, then the rows with every column as a
// string, in the table's column order; no rows at all when none is live.
func (s *Server) channelsJSONLocked() string {
	return tableJSON(columns, s.channels.Values())
}

// tableJSON is a "show ... as json" answer: row_count, then the rows with
// every column as a string, in the columns' order; no rows at all when
// there are none.
func tableJSON(cols []string, rows []map[string]string) string {
	if len(rows) == 0 {
		return "{\"row_count\": 0}\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"row_count":%d,"rows":[`, len(rows))
	for i, r := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('{')
		for j, col := range cols {
			if j > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(col)
			v, _ := json.Marshal(r[col])
			b.Write(k)
			b.WriteByte(':')
			b.Write(v)
		}
		b.WriteByte('}')
	}
	b.WriteString("]}")
	return b.String()
}

// callColumns are the basic_calls view's columns in FreeSWITCH 1.10, in
// order (switch_core_sqldb.c); "b_" ones are the bridged callee's.
var callColumns = []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
	"ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num",
	"callee_direction", "call_uuid", "hostname", "sent_callee_name", "sent_callee_num",
	"b_uuid", "b_direction", "b_created", "b_created_epoch", "b_name", "b_state", "b_cid_name", "b_cid_num",
	"b_ip_addr", "b_dest", "b_presence_id", "b_presence_data", "b_accountcode", "b_callstate", "b_callee_name",
	"b_callee_num", "b_callee_direction", "b_sent_callee_name", "b_sent_callee_num", "call_created_epoch"}

// callsJSONLocked answers "show calls as json" as mod_commands does from
// the basic_calls view: a row per channel that is no bridge's callee,
// with its callee's columns when it is a bridge's caller (empty strings
// otherwise, as cJSON is given NULL columns), ordered by the bridge's
// creation (unbridged rows, whose is NULL, first); the wrapper is
// "show channels as json"'s. Not yet checked against a recording: the
// shape is read from the view and show_as_json_callback.
func (s *Server) callsJSONLocked() string {
	callee := map[string]bool{}
	byCaller := map[string]callRow{}
	for _, c := range s.calls {
		callee[c.callee] = true
		byCaller[c.caller] = c
	}
	var unbridged, bridged []map[string]string
	for _, a := range s.channels.Values() {
		id := a["uuid"]
		c, isCaller := byCaller[id]
		if !isCaller && callee[id] {
			continue
		}
		r := map[string]string{}
		for _, col := range callColumns {
			if !strings.HasPrefix(col, "b_") && col != "call_created_epoch" {
				r[col] = a[col]
			}
		}
		if b, ok := s.channels.Get(c.callee); isCaller && ok {
			for _, col := range callColumns {
				if bare, ok := strings.CutPrefix(col, "b_"); ok {
					r[col] = b[bare]
				}
			}
			r["call_created_epoch"] = c.epoch
			bridged = append(bridged, r)
			continue
		}
		unbridged = append(unbridged, r)
	}
	return tableJSON(callColumns, append(unbridged, bridged...))
}

// dump answers "uuid_dump UUID json" as mod_commands does: the session's
// CHANNEL_DATA event serialized as "event json" serializes events; an
// error line when no such session lives.
func (s *Server) dump(id string) string {
	s.Lock()
	s.WaitSentLocked()
	h, ok := s.sessions[id]
	var b []byte
	if ok {
		out := make(map[string]string, len(h)+1)
		for k, v := range h {
			out[k] = v
		}
		out["Event-Name"] = "CHANNEL_DATA"
		b, _ = json.Marshal(out)
	}
	s.Unlock()
	if !ok {
		return "-ERR No such channel!\n"
	}
	return string(b)
}

// buglist answers "uuid_buglist UUID" as mod_commands does
// (switch_core_media_bug_enumerate): the session's media bugs, here the
// record_session ones, whose function is session_record and target the
// file; nothing for a session that does not live. Shaped from
// FreeSWITCH's source, not a recording.
func (s *Server) buglist(id string) string {
	s.Lock()
	s.WaitSentLocked()
	_, live := s.sessions[id]
	files := slices.Clone(s.records[id])
	s.Unlock()
	if !live {
		return ""
	}
	var b strings.Builder
	b.WriteString("<media-bugs>\n")
	for _, f := range files {
		fmt.Fprintf(&b, " <media-bug>\n  <function>session_record</function>\n  <target>%s</target>\n  <thread-locked>0</thread-locked>\n </media-bug>\n", f)
	}
	b.WriteString("</media-bugs>\n")
	return b.String()
}

// apply keeps each session's headers, for uuid_dump, at once, and moves
// the channel table, after ListLag when one is set.
func (s *Server) apply(_ int, raw []byte) {
	s.keepSessionLocked(raw)
	if s.opts.ListLag <= 0 {
		s.applyTable(raw)
		return
	}
	s.lagging = append(s.lagging, lagged{due: time.Now().Add(s.opts.ListLag), raw: raw})
}

// catchUpLocked shows in the table the events due by now.
func (s *Server) catchUpLocked(now time.Time) {
	n := 0
	for ; n < len(s.lagging) && !s.lagging[n].due.After(now); n++ {
		s.applyTable(s.lagging[n].raw)
	}
	s.lagging = s.lagging[n:]
}

// keepSessionLocked merges an event's headers into its session's, as the
// session's channel holds them: a variable, once set, stays.
func (s *Server) keepSessionLocked(raw []byte) {
	var e map[string]any
	if json.Unmarshal(raw, &e) != nil {
		return
	}
	id, _ := e["Unique-ID"].(string)
	if id == "" {
		return
	}
	switch e["Event-Name"] {
	case "CHANNEL_DESTROY":
		delete(s.sessions, id)
		delete(s.records, id)
		return
	case "CHANNEL_CREATE":
		s.sessions[id] = map[string]string{}
	case "CHANNEL_EXECUTE":
		// record_session's bug lives until stop_record_session or the
		// session's end; its data is the file, then any limit.
		file, _, _ := strings.Cut(fmt.Sprint(e["Application-Data"]), " ")
		switch e["Application"] {
		case "record_session":
			s.records[id] = append(s.records[id], file)
		case "stop_record_session":
			s.records[id] = slices.DeleteFunc(s.records[id], func(f string) bool { return f == file || file == "all" })
		}
	}
	h := s.sessions[id]
	if h == nil {
		return
	}
	for k, v := range e {
		if str, ok := v.(string); ok && k != "Event-Name" && k != "Event-Sequence" && k != "_body" {
			h[k] = str
		}
	}
}

// unbridgeLocked deletes the calls rows id is a leg of.
func (s *Server) unbridgeLocked(id string) {
	s.calls = slices.DeleteFunc(s.calls, func(c callRow) bool { return c.caller == id || c.callee == id })
}

// applyTable moves the channel table by one event the way FreeSWITCH's
// core database handler does.
func (s *Server) applyTable(raw []byte) {
	var e map[string]any
	if json.Unmarshal(raw, &e) != nil {
		return // a malformed event is replayed as it is and changes nothing
	}
	h := func(k string) string {
		v, _ := e[k].(string)
		return v
	}
	name := h("Event-Name")
	id := h("Unique-ID")
	if id == "" {
		return
	}
	c, _ := s.channels.Get(id)
	set := func(pairs ...string) {
		if c == nil {
			return
		}
		for i := 0; i+1 < len(pairs); i += 2 {
			c[pairs[i]] = h(pairs[i+1])
		}
	}
	switch name {
	case "CHANNEL_CREATE":
		c = map[string]string{}
		s.channels.Delete(id) // a new channel, last in creation order
		s.channels.Put(id, c)
		set("uuid", "Unique-ID", "direction", "Call-Direction", "created", "Event-Date-Local",
			"name", "Channel-Name", "state", "Channel-State", "callstate", "Channel-Call-State",
			"dialplan", "Caller-Dialplan", "context", "Caller-Context", "hostname", "FreeSWITCH-Switchname")
		if us, err := strconv.ParseInt(h("Event-Date-Timestamp"), 10, 64); err == nil {
			c["created_epoch"] = strconv.FormatInt(us/1e6, 10)
		}
	case "CHANNEL_DESTROY":
		s.channels.Delete(id)
		s.unbridgeLocked(id)
	case "CHANNEL_ANSWER", "CHANNEL_PROGRESS_MEDIA", "CODEC":
		set("read_codec", "Channel-Read-Codec-Name", "read_rate", "Channel-Read-Codec-Rate",
			"read_bit_rate", "Channel-Read-Codec-Bit-Rate", "write_codec", "Channel-Write-Codec-Name",
			"write_rate", "Channel-Write-Codec-Rate", "write_bit_rate", "Channel-Write-Codec-Bit-Rate")
	case "CHANNEL_EXECUTE", "CHANNEL_HOLD", "CHANNEL_UNHOLD":
		set("application", "Application", "application_data", "Application-Data",
			"presence_id", "Channel-Presence-ID", "presence_data", "Channel-Presence-Data")
	case "CHANNEL_ORIGINATE":
		set("presence_id", "Channel-Presence-ID", "presence_data", "Channel-Presence-Data", "call_uuid", "Channel-Call-UUID")
	case "CALL_UPDATE":
		set("callee_name", "Caller-Callee-ID-Name", "callee_num", "Caller-Callee-ID-Number",
			"sent_callee_name", "Sent-Callee-ID-Name", "sent_callee_num", "Sent-Callee-ID-Number",
			"callee_direction", "Direction", "cid_name", "Caller-Caller-ID-Name", "cid_num", "Caller-Caller-ID-Number")
	case "CHANNEL_CALLSTATE":
		if st := h("Channel-Call-State"); st != "DOWN" && st != "HANGUP" {
			set("callstate", "Channel-Call-State")
		}
	case "CHANNEL_STATE":
		switch h("Channel-State") {
		case "CS_NEW", "CS_INIT", "CS_HANGUP", "CS_REPORTING", "CS_DESTROY":
		case "CS_ROUTING":
			set("state", "Channel-State", "cid_name", "Caller-Caller-ID-Name", "cid_num", "Caller-Caller-ID-Number",
				"callee_name", "Caller-Callee-ID-Name", "callee_num", "Caller-Callee-ID-Number",
				"sent_callee_name", "Sent-Callee-ID-Name", "sent_callee_num", "Sent-Callee-ID-Number",
				"ip_addr", "Caller-Network-Addr", "dest", "Caller-Destination-Number",
				"dialplan", "Caller-Dialplan", "context", "Caller-Context",
				"presence_id", "Channel-Presence-ID", "presence_data", "Channel-Presence-Data")
			if c != nil && c["initial_dest"] == "" {
				set("initial_cid_name", "Caller-Caller-ID-Name", "initial_cid_num", "Caller-Caller-ID-Number",
					"initial_ip_addr", "Caller-Network-Addr", "initial_dest", "Caller-Destination-Number",
					"initial_dialplan", "Caller-Dialplan", "initial_context", "Caller-Context")
			}
		default:
			set("state", "Channel-State")
		}
	case "CHANNEL_BRIDGE":
		a, b := h("Bridge-A-Unique-ID"), h("Bridge-B-Unique-ID")
		if a == "" || b == "" {
			a, b = h("Caller-Unique-ID"), h("Other-Leg-Unique-ID")
		}
		for _, leg := range []string{a, b} {
			if lc, ok := s.channels.Get(leg); ok {
				lc["call_uuid"] = h("Channel-Call-UUID")
			}
		}
		epoch := ""
		if us, err := strconv.ParseInt(h("Event-Date-Timestamp"), 10, 64); err == nil {
			epoch = strconv.FormatInt(us/1e6, 10)
		}
		s.calls = append(s.calls, callRow{callUUID: h("Channel-Call-UUID"), caller: a, callee: b, epoch: epoch})
	case "CHANNEL_UNBRIDGE":
		call := h("Channel-Call-UUID")
		for _, lc := range s.channels.Values() {
			if lc["call_uuid"] == call {
				lc["call_uuid"] = lc["uuid"]
			}
		}
		s.unbridgeLocked(h("Caller-Unique-ID"))
	}
}
