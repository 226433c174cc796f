package doctor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

const checkOriginate = "may originate calls"

// ariOriginateCheck asks, without placing a call, whether the ARI user may
// originate: POST /ari/channels with no endpoint. Asterisk refuses a
// read_only user any write with 403 before reading the request, and
// answers a writing user 400 for the missing endpoint.
func ariOriginateCheck(ctx context.Context, cfg Config, add func(Result)) {
	c, err := newClient(cfg)
	if err != nil {
		add(Result{Check: checkOriginate, Status: Skip, Detail: "the ARI settings are not usable"})
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.rest+"/channels", nil)
	if err != nil {
		add(Result{Check: checkOriginate, Status: Fail, Detail: err.Error()})
		return
	}
	req.Header.Set("Authorization", c.auth)
	resp, err := c.http.Do(req)
	if err != nil {
		add(Result{Check: checkOriginate, Status: Skip, Detail: "Asterisk is not reachable"})
		return
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusForbidden:
		add(Result{Check: checkOriginate, Status: Fail, Detail: fmt.Sprintf("Asterisk refuses user %q any write (HTTP 403): it is read_only", c.user),
			Fix: fmt.Sprintf("calls on request (--dial) originate through ARI: set read_only = no in ari.conf [%s], then asterisk -rx 'module reload res_ari.so'", c.user)})
	case resp.StatusCode == http.StatusUnauthorized:
		add(Result{Check: checkOriginate, Status: Skip, Detail: "the credentials were refused"})
	case resp.StatusCode == http.StatusBadRequest:
		add(Result{Check: checkOriginate, Status: OK, Detail: fmt.Sprintf("user %q may write (an originate without endpoint was refused as incomplete, not forbidden)", c.user)})
	default:
		add(Result{Check: checkOriginate, Status: Warn, Detail: fmt.Sprintf("POST /ari/channels without endpoint answered HTTP %d; can't tell", resp.StatusCode),
			Fix: "make sure ari.conf's user for kanca has read_only = no"})
	}
}

// eslOriginateAnswer judges FreeSWITCH's answer to "api originate" with no
// arguments: mod_commands prints its usage when the command may run.
func eslOriginateAnswer(answer string, err error) Result {
	if err != nil && strings.Contains(err.Error(), "-USAGE") {
		// Conn.API reports any "-" answer as a refusal; usage is not one.
		answer, err = "-USAGE", nil
	}
	switch {
	case err != nil:
		return Result{Check: checkOriginate, Status: Fail, Detail: "api originate: " + err.Error(),
			Fix: "calls on request (--dial) run bgapi originate, uuid_broadcast and uuid_kill on the event socket; allow them for kanca's event socket user"}
	case strings.HasPrefix(answer, "-USAGE"):
		return Result{Check: checkOriginate, Status: OK, Detail: "the event socket may run originate"}
	default:
		return Result{Check: checkOriginate, Status: Fail, Detail: "api originate: " + strings.TrimSpace(answer),
			Fix: "load mod_commands and allow originate, uuid_broadcast and uuid_kill for kanca's event socket user"}
	}
}
