package esl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scripted serves one connection with script: what to write, and whether
// to read one command first (">" prefix). It stands for peers the fake
// FreeSWITCH does not imitate: other services, broken or hostile ones.
func scripted(t *testing.T, script ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		for _, step := range script {
			if step == ">" {
				// Read one command: lines up to a blank one.
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\n" {
						break
					}
				}
				continue
			}
			if _, err := io.WriteString(nc, step); err != nil {
				return
			}
		}
		_, _ = io.Copy(io.Discard, br) // hold the connection until the client leaves
	}()
	return ln.Addr().String()
}

func TestDialRefusals(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		script []string
		want   error
		text   string
	}{
		{"acl", []string{"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"},
			ErrRejected, "Access Denied, go away."},
		{"password", []string{"Content-Type: auth/request\n\n", ">", "Content-Type: command/reply\nReply-Text: -ERR invalid\n\n"},
			ErrUnauthorized, "-ERR invalid"},
		{"http", []string{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"}, ErrNotEventSocket, "without a colon"},
		{"other greeting", []string{"Content-Type: text/plain\n\n"}, ErrNotEventSocket, "text/plain"},
		{"huge", []string{"Content-Type: auth/request\nContent-Length: 999999999999\n\n"}, ErrNotEventSocket, "limit"},
		{"endless header", []string{"Content-Type: " + strings.Repeat("x", maxLine+1)}, ErrNotEventSocket, "longer than"},
		{"odd answer", []string{"Content-Type: auth/request\n\n", ">", "Content-Type: api/response\n\n"}, ErrNotEventSocket, "api/response"},
		{"silence then close", nil, io.EOF, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := scripted(t, c.script...)
			if c.script == nil {
				addr = closedAfterAccept(t)
			}
			_, err := Dial(ctx, addr, "s3cret-pw", failsafe)
			require.Error(t, err)
			if c.want != nil {
				assert.ErrorIs(t, err, c.want)
			}
			assert.Contains(t, err.Error(), c.text)
			assert.NotContains(t, err.Error(), "s3cret-pw")
		})
	}
}

// closedAfterAccept accepts one connection and closes it at once.
func closedAfterAccept(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		if nc, err := ln.Accept(); err == nil {
			nc.Close()
		}
	}()
	return ln.Addr().String()
}

func TestDialCancelledWhileTheGreetingWaits(t *testing.T) {
	addr := scripted(t) // accepts, says nothing
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, addr, "pw", failsafe)
		done <- err
	}()
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

// After login, answers are matched to commands in order, events go to
// Events, and a disconnect notice ends the connection with its reason.
func TestConnAnswersEventsAndDisconnect(t *testing.T) {
	addr := scripted(t,
		"Content-Type: auth/request\n\n", ">",
		"Content-Type: command/reply\nReply-Text: +OK accepted\n\n", ">",
		"Content-Type: command/reply\nReply-Text: +OK event listener enabled json\n\n", ">",
		ev(`{"Event-Name":"HEARTBEAT"}`),
		"Content-Type: api/response\nContent-Length: 6\n\n+OK a\n", ">",
		"Content-Type: log/data\nContent-Length: 3\n\nlog",
		"Content-Type: api/response\nContent-Length: 21\n\n-ERR no such command\n",
		"Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n",
	)
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	c, err := Dial(ctx, addr, "pw", failsafe)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Subscribe(ctx, "HEARTBEAT"))

	type answer struct {
		body string
		err  error
	}
	first, second := make(chan answer, 1), make(chan answer, 1)
	go func() {
		b, err := c.API(ctx, "a")
		first <- answer{b, err}
		b, err = c.API(ctx, "b")
		second <- answer{b, err}
	}()
	assert.Equal(t, `{"Event-Name":"HEARTBEAT"}`, string(<-c.Events()))
	a := <-first
	require.NoError(t, a.err)
	assert.Equal(t, "+OK a\n", a.body)
	a = <-second
	assert.ErrorIs(t, a.err, ErrCommand)
	assert.Contains(t, a.err.Error(), "-ERR no such command")

	_, open := <-c.Events()
	assert.False(t, open, "events end with the connection")
	<-c.Done()
	assert.Contains(t, c.Err().Error(), "FreeSWITCH closed the connection: Disconnected, goodbye.")
	_, err = c.API(ctx, "after")
	assert.Error(t, err)
	_, err = c.API(ctx, "two\nlines")
	assert.Error(t, err)
}

func ev(body string) string {
	return fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-json\n\n%s", len(body), body)
}

func TestReadMessageSkipsBlankLinesAndChecksLength(t *testing.T) {
	m, err := readMessage(bufio.NewReader(strings.NewReader("\n\nContent-Type: api/response\nContent-Length: 2\n\nok")))
	require.NoError(t, err)
	assert.Equal(t, "api/response", m.contentType())
	assert.Equal(t, "ok", string(m.body))
	_, err = readMessage(bufio.NewReader(strings.NewReader("Content-Type: x\nContent-Length: -1\n\n")))
	assert.ErrorIs(t, err, errFraming)
	// A message cut short is not the clean end of a stream.
	for _, cut := range []string{"Content-Type: x\nContent-Length: 5\n\nab", "Content-Type: x\n"} {
		_, err = readMessage(bufio.NewReader(strings.NewReader(cut)))
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "%q", cut)
	}
	_, err = readMessage(bufio.NewReader(strings.NewReader("\n")))
	assert.ErrorIs(t, err, io.EOF)
}

// An answer that arrived before the connection ended is the command's
// answer, not the end: FreeSWITCH often sends its last reply and the
// disconnect notice in one write, and the waiter may wake only after the
// reader has seen both. The test queues the waiter itself so that it
// waits only once the connection has ended, every time.
func TestAnswerBeforeDisconnectWins(t *testing.T) {
	for i := 0; i < 50; i++ {
		addr := scripted(t,
			"Content-Type: auth/request\n\n", ">",
			"Content-Type: command/reply\nReply-Text: +OK accepted\n\n", ">",
			"Content-Type: api/response\nContent-Length: 6\n\n+OK a\n"+
				"Content-Type: text/disconnect-notice\nContent-Length: 23\n\nDisconnected, goodbye.\n",
		)
		ctx, cancel := context.WithTimeout(context.Background(), failsafe)
		c, err := Dial(ctx, addr, "pw", failsafe)
		require.NoError(t, err)
		ch := make(chan message, 1)
		c.qmu.Lock()
		c.queue = append(c.queue, ch)
		c.qmu.Unlock()
		_, err = io.WriteString(c.nc, "api a\n\n")
		require.NoError(t, err)
		<-c.Done()
		m, err := c.await(ctx, ch, failsafe)
		require.NoError(t, err, "run %d", i)
		assert.Equal(t, "+OK a\n", string(m.body))
		cancel()
	}
}
