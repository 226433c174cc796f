package ari

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrUnauthorized is wrapped when Asterisk answers 401: the user or password
// does not match ari.conf. The Source keeps retrying, so an operator can fix
// ari.conf and reload without restarting kanca.
var ErrUnauthorized = errors.New("Asterisk refused the ARI credentials")

// maxBody bounds a REST answer: GET /ari/channels on a busy PBX.
const maxBody = 64 << 20

// Client calls Asterisk's REST interface with the credentials the Source
// subscribes with; the Source lists channels and asks who Asterisk is
// through it, and commands (originate, play, hang up) go through the same
// one. Every request is bounded by a timeout. Safe for concurrent use.
type Client struct {
	base    string // REST base, ending in /ari
	auth    string // the Authorization header value
	http    *http.Client
	timeout time.Duration
}

// Do sends method to path (under /ari, with its query if any: "/channels",
// "/channels/ID/play?media=sound:beep") with body as JSON (nil: none) and
// decodes the JSON answer into out (nil: the answer is dropped). A request
// not answered within the client's timeout (Config.HTTPTimeout), or ctx's
// if sooner, fails with an error that says so and wraps
// context.DeadlineExceeded; a non-2xx answer fails with its status and
// Asterisk's message, wrapping ErrUnauthorized for 401.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.do(ctx, method, path, body, out)
	return err
}

// do is Do that also returns the answer's headers.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", c.auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, c.late(ctx, err))
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
			return nil, fmt.Errorf("%s %s: decode: %w", method, path, c.late(ctx, err))
		}
	}
	return resp.Header, nil
}

// late names the timeout when the request ran out of time.
func (c *Client) late(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer from Asterisk within %s: %w", c.timeout, context.DeadlineExceeded)
	}
	return err
}

// statusError turns a non-2xx answer into an error naming the status and
// Asterisk's message, if any.
func statusError(resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w (HTTP 401): check the user and password in ari.conf", ErrUnauthorized)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	}
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if resp.Body != nil {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
	}
	return &httpStatusError{code: resp.StatusCode, status: resp.Status, msg: body.Message + body.Error}
}

// httpStatusError is a non-2xx answer, with Asterisk's message if any.
type httpStatusError struct {
	code        int
	status, msg string
}

func (e *httpStatusError) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("HTTP %s: %s", e.status, e.msg)
	}
	return "HTTP " + e.status
}

// Info is what GET /ari/asterisk/info says about the Asterisk behind the URL.
type Info struct {
	Version  string // e.g. 20.20.1
	EntityID string // the asterisk_id every event carries
}

// Info asks Asterisk who it is. It checks the URL and credentials without
// subscribing to anything.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var body struct {
		System struct {
			Version  string `json:"version"`
			EntityID string `json:"entity_id"`
		} `json:"system"`
	}
	if err := c.Do(ctx, http.MethodGet, "/asterisk/info", nil, &body); err != nil {
		return Info{}, err
	}
	return Info{Version: body.System.Version, EntityID: body.System.EntityID}, nil
}
