package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/kanca/kanca/esl"
)

const (
	checkESLReach     = "event socket reachable"
	checkESLAuth      = "password accepted"
	checkESLSubscribe = "event json works"
	checkESLChannels  = "channel list works"
)

// eslChecks checks FreeSWITCH's event socket as kanca run --pbx freeswitch
// uses it: connect, log in, subscribe, list channels.
func eslChecks(ctx context.Context, cfg Config, add func(Result)) {
	skipRest := func(from int, why string) {
		for _, name := range []string{checkESLReach, checkESLAuth, checkESLSubscribe, checkESLChannels}[from:] {
			add(Result{Check: name, Status: Skip, Detail: why})
		}
	}
	e := cfg.ESL
	if e.Addr == "" {
		e.Addr = esl.DefaultAddr
	}
	// The address is checked as kanca run checks it; a missing password
	// shows below, as FreeSWITCH refusing it.
	probe := e
	probe.Password = "x"
	if err := esl.CheckConfig(probe); err != nil {
		add(Result{Check: checkESLReach, Status: Fail, Detail: err.Error(),
			Fix: "set --esl-addr (KANCA_ESL_ADDR) to event_socket.conf.xml's listen-ip:listen-port"})
		skipRest(1, "the event socket settings are not usable")
		return
	}

	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	c, err := esl.Dial(dctx, e.Addr, e.Password, cfg.Timeout)
	cancel()
	switch {
	case errors.Is(err, esl.ErrRejected):
		add(Result{Check: checkESLReach, Status: Fail, Detail: err.Error(),
			Fix: "allow kanca's address in the ACL event_socket.conf.xml's apply-inbound-acl names (acl.conf.xml), then fs_cli -x reloadacl; a change to event_socket.conf.xml itself takes a restart of FreeSWITCH (or reload mod_event_socket from its console)"})
		skipRest(1, "FreeSWITCH turned kanca's address away")
		return
	case errors.Is(err, esl.ErrNotEventSocket):
		add(Result{Check: checkESLReach, Status: Fail, Detail: err.Error(),
			Fix: "point --esl-addr (KANCA_ESL_ADDR) at FreeSWITCH's event socket: event_socket.conf.xml's listen-ip:listen-port"})
		skipRest(1, "no event socket at this address")
		return
	case errors.Is(err, esl.ErrUnauthorized):
		add(Result{Check: checkESLReach, Status: OK, Detail: "FreeSWITCH's event socket answers at " + e.Addr})
		detail := "FreeSWITCH refused the password"
		if e.Password == "" {
			detail = "no password given, and FreeSWITCH wants one"
		}
		add(Result{Check: checkESLAuth, Status: Fail, Detail: detail,
			Fix: "set KANCA_ESL_PASSWORD (or --esl-password-file) to the password in event_socket.conf.xml"})
		skipRest(2, "the password was refused")
		return
	case err != nil:
		add(Result{Check: checkESLReach, Status: Fail, Detail: err.Error(), Fix: unreachableFix(err)})
		skipRest(1, "FreeSWITCH is not reachable")
		return
	}
	defer c.Close()
	add(Result{Check: checkESLReach, Status: OK, Detail: "FreeSWITCH's event socket answers at " + e.Addr})
	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	status, err := c.API(actx, "status")
	cancel()
	ready := "logged in"
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "FreeSWITCH") {
			ready = line // FreeSWITCH (Version 1.10.12 -release 64bit) is ready
		}
	}
	if err != nil {
		ready = "logged in, but api status failed: " + err.Error()
	}
	add(Result{Check: checkESLAuth, Status: OK, Detail: ready})

	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	err = c.Subscribe(sctx, esl.Subscription...)
	cancel()
	if err != nil {
		add(Result{Check: checkESLSubscribe, Status: Fail, Detail: err.Error(),
			Fix: "kanca subscribes with 'event json " + strings.Join(esl.Subscription, " ") + "'; check FreeSWITCH's log for why it refused"})
	} else {
		add(Result{Check: checkESLSubscribe, Status: OK, Detail: fmt.Sprintf("subscribed to the %d events and subclasses kanca reads", len(esl.Subscription))})
		// Events now flow; nobody here wants them, and the answers below
		// queue behind them.
		go func() {
			for range c.Events() {
			}
		}()
	}

	lctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	n, err := esl.CountChannels(lctx, c)
	cancel()
	if err != nil {
		add(Result{Check: checkESLChannels, Status: Fail, Detail: err.Error(),
			Fix: "kanca lists channels with 'show channels as json' after every reconnect; it needs FreeSWITCH's core database (do not start FreeSWITCH with -nosql)"})
		return
	}
	add(Result{Check: checkESLChannels, Status: OK, Detail: fmt.Sprintf("%d live channels listed", n)})
	if cfg.Originate {
		octx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		add(eslOriginateAnswer(c.API(octx, "originate")))
		cancel()
	}
}

// unreachableFix is what to do when no event socket answered, by why.
func unreachableFix(err error) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return "the host name in --esl-addr (KANCA_ESL_ADDR) does not resolve: use FreeSWITCH's address, or fix DNS"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "something at --esl-addr (KANCA_ESL_ADDR) accepted the connection but never greeted as FreeSWITCH's event socket does: check it is mod_event_socket's listen-port, and that FreeSWITCH is not stalled"
	}
	return "start FreeSWITCH with mod_event_socket loaded, check event_socket.conf.xml's listen-ip and listen-port, and point --esl-addr (KANCA_ESL_ADDR) at them"
}
