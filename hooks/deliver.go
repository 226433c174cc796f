package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// What delivering elsewhere than this process's dispatcher shares with it
// (the cluster's workers): one request builder, one signer, one retry
// policy.

// Sender sends deliveries as the dispatcher does: the hook's method and
// templates, signed over what is sent, within the network policy.
type Sender struct{ s *sender }

// NewSender returns a sender whose connections give up after connect.
func NewSender(connect time.Duration, now func() time.Time, policy NetPolicy) *Sender {
	if connect <= 0 {
		connect = 5 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Sender{newSender(connect, now, policy)}
}

// Send sends d to h once. Every failure is in the result.
func (s *Sender) Send(ctx context.Context, h Hook, d Delivery) AttemptResult {
	return s.s.send(ctx, h, d)
}

// Close drops the idle connections.
func (s *Sender) Close() { s.s.close() }

// Decision is what an attempt makes of a delivery.
type Decision struct {
	State  State     // Delivered, Retrying or Dead
	Next   time.Time // Retrying: when to try again
	Reason string    // Dead: why
	Gone   bool      // the receiver answered 410: disable the hook
}

// Decide turns attempt number attempts (1-based) and its result into the
// delivery's next state, as the dispatcher does.
func (p RetryPolicy) Decide(attempts int, r AttemptResult, now time.Time) Decision {
	o := decide(p, attempts, r, now)
	return Decision{State: o.state, Next: o.next, Reason: o.reason, Gone: o.gone}
}

// Validate refuses a policy that cannot be followed.
func (p RetryPolicy) Validate() error { return p.validate() }

// ErrText is the attempt's failure as the attempt log words it, "" for
// a success.
func (r AttemptResult) ErrText() string { return r.errText() }

// DeliveryID is the delivery id of the event with id eventID (a UUIDv7)
// for hook hookID: the same on every worker and every repeat, so a
// receiver drops a repeat by it, and still sorted by the event's time.
func DeliveryID(eventID string, hookID int64) string {
	sum := sha256.Sum256([]byte(eventID + "/" + strconv.FormatInt(hookID, 10)))
	var u [16]byte
	copy(u[6:], sum[:10])
	if len(eventID) >= 13 {
		if b, err := hex.DecodeString(eventID[:8] + eventID[9:13]); err == nil {
			copy(u[:6], b) // the event's milliseconds
		}
	}
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
