package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/kanca/kanca/cdr"
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

// Test sends ev to h once, now, outside any queue: nothing is stored and
// nothing retried. It sends even to a disabled hook.
func (s *Sender) Test(ctx context.Context, h Hook, ev cdr.Event, enc Encoding) (AttemptResult, error) {
	body, ctype, name, err := enc.Encode(h, ev)
	if err != nil {
		return AttemptResult{}, fmt.Errorf("test %s: %w", h, err)
	}
	dl := Delivery{ID: newDeliveryID(s.s.now()), HookID: h.ID, CallID: ev.CallID, Seq: ev.Seq, Event: name,
		Body: body, ContentType: ctype}
	r := s.Send(ctx, h, dl)
	if r.Err != nil && errors.Is(r.Err, context.Canceled) && ctx.Err() != nil {
		return r, fmt.Errorf("test %s: %w", h, ctx.Err())
	}
	return r, nil
}

// Catalog is where hooks are kept and changed: the local Store, or a
// cluster's bucket (kanca hooks --nats).
type Catalog interface {
	AddHook(ctx context.Context, h Hook) (Hook, error)
	GetHook(ctx context.Context, id int64) (Hook, error)
	ListHooks(ctx context.Context) ([]Hook, error)
	UpdateHook(ctx context.Context, id int64, u HookUpdate) (Hook, error)
	RemoveHook(ctx context.Context, id int64) error
	SetEnabled(ctx context.Context, id int64, enabled bool) error
	Enable(ctx context.Context, id int64, discard bool) (int, error)
	// Where names the place for messages: the database file, the cluster.
	Where() string
}

// DeliveryLog is where deliveries are listed, shown and retried: the
// local Store, or a cluster's log (kanca deliveries --nats).
type DeliveryLog interface {
	GetHook(ctx context.Context, id int64) (Hook, error)
	Deliveries(ctx context.Context, f Filter) ([]Delivery, error)
	// Behind names, per delivery, the earlier seq of its call it waits
	// behind, where the log knows it.
	Behind(ctx context.Context, ds []Delivery) (map[string]int, error)
	Delivery(ctx context.Context, id string) (Delivery, []Attempt, error)
	Retry(ctx context.Context, id string) error
	RetryDeadProgress(ctx context.Context, hookID int64, progress func(done, total int)) (int, error)
}

// Where is the database file, for messages.
func (s *Store) Where() string { return s.path }

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
