package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/esl/esltest"
)

func eslConfig(addr, password, db string) Config {
	return Config{PBX: "freeswitch", ESL: esl.Config{Addr: addr, Password: password}, DB: db, Timeout: 5 * time.Second}
}

func TestFreeSWITCHChecksPass(t *testing.T) {
	db, _, _ := database(t)
	fs := esltest.NewServer(esltest.Options{Password: "esl-pw"})
	t.Cleanup(fs.Close)
	var reported []Result
	rs := Run(context.Background(), eslConfig(fs.Addr, "esl-pw", db), func(r Result) { reported = append(reported, r) })
	assert.Equal(t, rs, reported)
	require.GreaterOrEqual(t, len(rs), 4)
	assert.Equal(t, []string{checkESLReach, checkESLAuth, checkESLSubscribe, checkESLChannels},
		[]string{rs[0].Check, rs[1].Check, rs[2].Check, rs[3].Check})
	for _, r := range rs[:4] {
		assert.Equal(t, OK, r.Status, "%s: %s", r.Check, r.Detail)
	}
	assert.Contains(t, rs[1].Detail, "FreeSWITCH (Version 1.10")
	assert.Equal(t, "0 live channels listed", rs[3].Detail)
	assert.Equal(t, OK, find(t, rs, checkDB).Status)
	assert.Equal(t, 1, fs.Connections())
}

// greeter accepts one connection, says greeting and hangs up.
func greeter(t *testing.T, greeting string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = io.WriteString(nc, greeting)
	}()
	return ln.Addr().String()
}

func TestFreeSWITCHChecksFail(t *testing.T) {
	db, _, _ := database(t)
	fs := esltest.NewServer(esltest.Options{Password: "right-pw"})
	t.Cleanup(fs.Close)

	rs := Run(context.Background(), eslConfig(fs.Addr, "wrong-pw-Z9", db), nil)
	assert.Equal(t, OK, find(t, rs, checkESLReach).Status)
	auth := find(t, rs, checkESLAuth)
	assert.Equal(t, Fail, auth.Status)
	assert.Equal(t, "FreeSWITCH refused the password", auth.Detail)
	assert.Contains(t, auth.Fix, "KANCA_ESL_PASSWORD")
	assert.Equal(t, Skip, find(t, rs, checkESLSubscribe).Status)
	assert.Equal(t, Skip, find(t, rs, checkESLChannels).Status)
	for _, r := range rs {
		assert.NotContains(t, r.Detail+r.Fix, "wrong-pw-Z9")
	}

	rs = Run(context.Background(), eslConfig(fs.Addr, "", db), nil)
	assert.Equal(t, "no password given, and FreeSWITCH wants one", find(t, rs, checkESLAuth).Detail)

	// Nobody listening.
	rs = Run(context.Background(), eslConfig(strings.TrimPrefix(closedURL(t), "http://"), "pw", db), nil)
	reach := find(t, rs, checkESLReach)
	assert.Equal(t, Fail, reach.Status)
	assert.Contains(t, reach.Fix, "mod_event_socket")
	assert.Equal(t, Skip, find(t, rs, checkESLAuth).Status)
	assert.Equal(t, OK, find(t, rs, checkDB).Status, "the database is checked all the same")

	// Something else answers.
	rs = Run(context.Background(), eslConfig(greeter(t, "SSH-2.0-OpenSSH_9.6\r\n"), "pw", db), nil)
	reach = find(t, rs, checkESLReach)
	assert.Equal(t, Fail, reach.Status)
	assert.Contains(t, reach.Detail, "not a FreeSWITCH event socket")
	assert.Contains(t, reach.Fix, "--esl-addr")

	// Turned away by apply-inbound-acl.
	rs = Run(context.Background(), eslConfig(greeter(t, "Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"), "pw", db), nil)
	reach = find(t, rs, checkESLReach)
	assert.Equal(t, Fail, reach.Status)
	assert.Contains(t, reach.Detail, "Access Denied")
	assert.Contains(t, reach.Fix, "apply-inbound-acl")

	rs = Run(context.Background(), eslConfig("no-port", "pw", db), nil)
	assert.Contains(t, find(t, rs, checkESLReach).Detail, "host:port")
}

// What to do when no event socket answered depends on why: a name that
// does not resolve, something that never greets, nothing listening.
func TestUnreachableFixSaysWhy(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "freeswitch", IsNotFound: true}
	assert.Contains(t, unreachableFix(fmt.Errorf("dial: %w", dns)), "does not resolve")
	assert.Contains(t, unreachableFix(fmt.Errorf("read greeting: %w", context.DeadlineExceeded)), "never greeted")
	assert.Contains(t, unreachableFix(errors.New("connect: connection refused")), "start FreeSWITCH with mod_event_socket loaded")
}
