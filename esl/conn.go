package esl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrUnauthorized is wrapped when FreeSWITCH answers the password with
// "-ERR invalid": it is not event_socket.conf.xml's password. The Source
// keeps retrying, so an operator can fix either side without restarting
// kanca.
var ErrUnauthorized = errors.New("FreeSWITCH refused the event socket password")

// ErrRejected is wrapped when FreeSWITCH turns the connection away before
// asking for a password: kanca's address is not allowed by the ACL that
// event_socket.conf.xml's apply-inbound-acl names.
var ErrRejected = errors.New("FreeSWITCH rejected kanca's address (event_socket.conf.xml apply-inbound-acl)")

// ErrNotEventSocket is wrapped when the peer does not greet like
// mod_event_socket: the address is something else.
var ErrNotEventSocket = errors.New("not a FreeSWITCH event socket")

// ErrCommand is wrapped when FreeSWITCH answers a command or API call with
// "-ERR ...".
var ErrCommand = errors.New("FreeSWITCH refused the command")

const (
	// maxBody bounds one message body: "show channels as json" on a busy
	// switch is the largest (about 1.5 KiB a channel); an event with every
	// channel variable stays near 20 KiB.
	maxBody = 64 << 20
	// maxLine bounds one header line; FreeSWITCH's own are short.
	maxLine = 64 << 10
	// maxHeaders bounds the header lines of one message.
	maxHeaders = 256
)

// errFraming is wrapped by every readMessage error that is the peer's
// bytes, not the transport: what does not frame like the event socket.
var errFraming = errors.New("bad framing")

// message is one frame of the event socket protocol: headers, a blank
// line, then Content-Length bytes of body.
type message struct {
	header map[string]string // names as sent ("Content-Type")
	body   []byte
}

func (m message) contentType() string { return m.header["Content-Type"] }

// replyText is what a command/reply or api/response says: Reply-Text for
// the first, the body for the second.
func (m message) replyText() string {
	if t, ok := m.header["Reply-Text"]; ok {
		return t
	}
	return strings.TrimSpace(string(m.body))
}

// readMessage reads one message. Blank lines between messages are skipped.
func readMessage(br *bufio.Reader) (message, error) {
	m := message{header: map[string]string{}}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return m, fmt.Errorf("%w: header line longer than %d bytes", errFraming, maxLine)
		}
		if err != nil {
			if len(m.header) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return m, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if len(m.header) == 0 {
				continue
			}
			break
		}
		if len(m.header) >= maxHeaders {
			return m, fmt.Errorf("%w: more than %d header lines", errFraming, maxHeaders)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return m, fmt.Errorf("%w: header line without a colon: %.40q", errFraming, line)
		}
		m.header[string(bytes.TrimSpace(name))] = string(bytes.TrimSpace(value))
	}
	if cl, ok := m.header["Content-Length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return m, fmt.Errorf("%w: Content-Length %.20q", errFraming, cl)
		}
		if n > maxBody {
			return m, fmt.Errorf("%w: a %d-byte message is over the %d-byte limit", errFraming, n, maxBody)
		}
		m.body = make([]byte, n)
		if _, err := io.ReadFull(br, m.body); err != nil {
			return m, fmt.Errorf("read %d-byte body: %w", n, err)
		}
	}
	return m, nil
}

// Conn is an authenticated inbound event socket connection. Commands may
// be sent from any goroutine; their answers are matched to them in order,
// which is how mod_event_socket sends them. Events (after Subscribe) are
// delivered on Events in arrival order; until they are taken the reader
// waits, and with it the answers queued behind them.
type Conn struct {
	nc      net.Conn
	br      *bufio.Reader
	timeout time.Duration

	wmu sync.Mutex // one writer at a time; also orders queue appends with writes

	qmu   sync.Mutex
	queue []chan message // answers awaited, oldest first

	events chan []byte
	done   chan struct{}
	once   sync.Once
	err    error // set before done is closed

	// For the liveness probe: messages read, and since when (Unix ns) the
	// reader has been waiting on the network with nothing to hand over (0
	// while it reads or waits for Events to be taken).
	read         atomic.Uint64
	waitingSince atomic.Int64
}

// Dial connects to addr, logs in with password and starts reading. timeout
// bounds the connection and the login, and every later write.
func Dial(ctx context.Context, addr, password string, timeout time.Duration) (*Conn, error) {
	if strings.ContainsAny(password, "\r\n") {
		return nil, errors.New("the event socket password cannot hold a line break")
	}
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	c := &Conn{
		nc:      nc,
		br:      bufio.NewReaderSize(nc, maxLine),
		timeout: timeout,
		events:  make(chan []byte),
		done:    make(chan struct{}),
	}
	if err := c.login(ctx, password); err != nil {
		nc.Close()
		return nil, fmt.Errorf("event socket %s: %w", addr, err)
	}
	go c.pump()
	return c, nil
}

func (c *Conn) login(ctx context.Context, password string) error {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return err
	}
	// Cancelling ctx cuts a login that waits on a silent peer.
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	m, err := readMessage(c.br)
	if errors.Is(err, errFraming) {
		return fmt.Errorf("%w: %v", ErrNotEventSocket, err)
	}
	if err != nil {
		return fmt.Errorf("read greeting: %w", orCtx(ctx, err))
	}
	switch m.contentType() {
	case "auth/request":
	case "text/rude-rejection":
		return fmt.Errorf("%w: %s", ErrRejected, firstLine(m.body))
	default:
		return fmt.Errorf("%w: greeted with Content-Type %.40q", ErrNotEventSocket, m.contentType())
	}
	if _, err := io.WriteString(c.nc, "auth "+password+"\n\n"); err != nil {
		return fmt.Errorf("send password: %w", orCtx(ctx, err))
	}
	m, err = readMessage(c.br)
	if err != nil {
		return fmt.Errorf("read login answer: %w", orCtx(ctx, err))
	}
	switch reply := m.replyText(); {
	case m.contentType() == "command/reply" && isOK(reply):
	case m.contentType() == "command/reply":
		return fmt.Errorf("%w (%.60s): check event_socket.conf.xml's password", ErrUnauthorized, reply)
	case m.contentType() == "text/rude-rejection":
		return fmt.Errorf("%w: %s", ErrRejected, firstLine(m.body))
	default:
		return fmt.Errorf("%w: answered the password with Content-Type %.40q", ErrNotEventSocket, m.contentType())
	}
	stop()
	return c.nc.SetDeadline(time.Time{})
}

// orCtx prefers ctx's error to the deadline it caused.
func orCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func isOK(reply string) bool {
	return strings.HasPrefix(reply, "+OK") || strings.HasPrefix(reply, "%2BOK")
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	if len(line) > 120 {
		line = line[:120]
	}
	return string(line)
}

// pump reads messages until the connection ends: events go to Events,
// answers to whoever waits for them.
func (c *Conn) pump() {
	defer close(c.events)
	for {
		c.waitingSince.Store(time.Now().UnixNano())
		m, err := readMessage(c.br)
		c.waitingSince.Store(0)
		if err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		c.read.Add(1)
		switch m.contentType() {
		case "text/event-json":
			select {
			case c.events <- m.body:
			case <-c.done:
				return
			}
		case "command/reply", "api/response":
			c.qmu.Lock()
			var ch chan message
			if len(c.queue) > 0 {
				ch = c.queue[0]
				c.queue = c.queue[1:]
			}
			c.qmu.Unlock()
			if ch != nil {
				ch <- m // buffered: a waiter that gave up does not block the reader
			}
		case "text/disconnect-notice":
			if m.header["Content-Disposition"] == "linger" {
				continue
			}
			c.fail(fmt.Errorf("FreeSWITCH closed the connection: %s", firstLine(m.body)))
			return
		case "text/rude-rejection":
			c.fail(fmt.Errorf("%w: %s", ErrRejected, firstLine(m.body)))
			return
		}
		// Anything else (log/data without "log" asked for) is not for kanca.
	}
}

// fail ends the connection with err, once.
func (c *Conn) fail(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
		c.nc.Close()
	})
}

// Close ends the connection. It is safe to call more than once.
func (c *Conn) Close() error {
	c.fail(net.ErrClosed)
	return nil
}

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, nil while it lasts.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Events delivers the body of every event (one JSON object) in arrival
// order; it is closed when the connection ends.
func (c *Conn) Events() <-chan []byte { return c.events }

// command sends one command and waits for its answer, until the
// connection's timeout passes, ctx ends or the connection does. A cmd with
// a line break is refused: it would be read as several.
func (c *Conn) command(ctx context.Context, cmd string) (message, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return message{}, fmt.Errorf("command %.40q has a line break", cmd)
	}
	wait := c.timeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = time.Until(d)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ch := make(chan message, 1)
	c.wmu.Lock()
	c.qmu.Lock()
	c.queue = append(c.queue, ch)
	c.qmu.Unlock()
	err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if err == nil {
		_, err = io.WriteString(c.nc, cmd+"\n\n")
	}
	c.wmu.Unlock()
	if err != nil {
		// The answers queued behind this one could no longer be matched.
		c.fail(fmt.Errorf("write: %w", err))
		return message{}, c.err
	}
	return c.await(ctx, ch, wait)
}

// await waits for the answer queued as ch.
func (c *Conn) await(ctx context.Context, ch chan message, wait time.Duration) (message, error) {
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The answer may still come; it is matched to this command and
			// dropped, so the answers behind it stay in step.
			return message{}, fmt.Errorf("no answer from FreeSWITCH within %s: %w", wait.Round(time.Millisecond), ctx.Err())
		}
		return message{}, ctx.Err()
	case <-c.done:
		// FreeSWITCH often sends its last answer and the disconnect
		// notice together: the reader hands the answer over before it
		// ends the connection, so an answer waiting here came first.
		select {
		case m := <-ch:
			return m, nil
		default:
			return message{}, c.err
		}
	}
}

// API runs an API command ("status", "show channels as json") and returns
// its answer; an answer starting with -ERR is returned as an error
// wrapping ErrCommand. Like every command it waits for its answer no
// longer than the timeout given to Dial (or ctx's deadline if sooner): then
// it fails with an error that says so and wraps context.DeadlineExceeded.
func (c *Conn) API(ctx context.Context, cmd string) (string, error) {
	m, err := c.command(ctx, "api "+cmd)
	if err != nil {
		return "", fmt.Errorf("api %s: %w", cmd, err)
	}
	body := string(m.body)
	if strings.HasPrefix(body, "-ERR") || strings.HasPrefix(body, "-USAGE") {
		return "", fmt.Errorf("api %s: %w: %s", cmd, ErrCommand, firstLine(m.body))
	}
	return body, nil
}

// BgAPI starts an API command in the background ("originate ...") and
// returns the Job-UUID FreeSWITCH gave it, once FreeSWITCH took it; the
// command's own answer comes later as a BACKGROUND_JOB event with that
// Job-UUID, to whoever subscribed to it. A refusal ("-ERR ...") wraps
// ErrCommand.
func (c *Conn) BgAPI(ctx context.Context, cmd string) (string, error) {
	m, err := c.command(ctx, "bgapi "+cmd)
	if err != nil {
		return "", fmt.Errorf("bgapi %s: %w", cmd, err)
	}
	reply := m.replyText()
	if !isOK(reply) {
		return "", fmt.Errorf("bgapi %s: %w: %.80s", cmd, ErrCommand, reply)
	}
	job := m.header["Job-UUID"]
	if job == "" {
		_, job, _ = strings.Cut(reply, "Job-UUID: ")
		job = strings.TrimSpace(job)
	}
	if job == "" {
		return "", fmt.Errorf("bgapi %s: the answer names no Job-UUID: %.80s", cmd, reply)
	}
	return job, nil
}

// Subscribe asks for events in the "event json" format: names are event
// names, and after "CUSTOM", subclasses.
func (c *Conn) Subscribe(ctx context.Context, names ...string) error {
	cmd := "event json " + strings.Join(names, " ")
	m, err := c.command(ctx, cmd)
	if err != nil {
		return fmt.Errorf("event json: %w", err)
	}
	if reply := m.replyText(); !isOK(reply) {
		return fmt.Errorf("event json: %w: %.80s", ErrCommand, reply)
	}
	return nil
}
