package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanca/kanca/hooks"
)

// Log is the delivery log kept in the cluster (LogBucket): one record per
// delivery with its attempts, written by the worker that owns the call's
// partition, read by `kanca deliveries --nats` on any node, and by a
// worker taking a partition over, to skip what was already done. Records
// expire LogRetention after their last change. Dead and held deliveries
// are also marked by hook ("dead.HOOK.ID", "held.HOOK.ID") so that a
// hook's can be found without reading the whole log.
type Log struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
}

// Log opens the delivery log, creating it if it is missing.
func (c *Conn) Log(ctx context.Context) (*Log, error) {
	kv, err := c.bucket(ctx, jetstream.KeyValueConfig{Bucket: LogBucket, Description: "kanca delivery log",
		History: 1, TTL: LogRetention})
	if err != nil {
		return nil, err
	}
	return &Log{kv: kv, js: c.JS}, nil
}

// Record is one delivery in the log.
type Record struct {
	hooks.Delivery
	Body      []byte          `json:"body"`
	EventID   string          `json:"event_id"`
	EventJSON json.RawMessage `json:"event_json"` // the cdr.Event, to send it again on retry
	Tries     []hooks.Attempt `json:"tries,omitempty"`
	// Retries counts `deliveries retry`; RetryDone the last of them a
	// worker finished. An event is sent again for a retry only once.
	Retries   int `json:"retries,omitempty"`
	RetryDone int `json:"retry_done,omitempty"`
}

// encodeRecord is r as stored: the delivery's own fields (its JSON), the
// body beside them (the delivery's JSON leaves it out).
func encodeRecord(r Record) []byte {
	r.Body = r.Delivery.Body
	b, _ := json.Marshal(r) // plain fields: cannot fail
	return b
}

func decodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, err
	}
	r.Delivery.Body = r.Body
	return r, nil
}

const (
	deliveryPrefix = "d."
	deadMark       = "dead"
	heldMark       = "held"
)

func markKey(kind string, hookID int64, id string) string {
	return kind + "." + strconv.FormatInt(hookID, 10) + "." + id
}

// Get returns the delivery with id; the error wraps hooks.ErrNotFound if
// the log has none.
func (l *Log) Get(ctx context.Context, id string) (Record, error) {
	e, err := kvGet(ctx, l.kv, deliveryPrefix+id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return Record{}, fmt.Errorf("delivery %q: %w", id, hooks.ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get delivery %s: %w", id, err)
	}
	r, err := decodeRecord(e.Value())
	if err != nil {
		return Record{}, fmt.Errorf("delivery %s: %w", id, err)
	}
	return r, nil
}

// put writes r, and its dead or held mark.
func (l *Log) put(ctx context.Context, r Record) error {
	if _, err := l.kv.Put(ctx, deliveryPrefix+r.ID, encodeRecord(r)); err != nil {
		return fmt.Errorf("log delivery %s: %w", r.ID, err)
	}
	for _, kind := range []string{deadMark, heldMark} {
		if string(r.State) == kind {
			if _, err := l.kv.Put(ctx, markKey(kind, r.HookID, r.ID), []byte(r.ID)); err != nil {
				return fmt.Errorf("log delivery %s: %w", r.ID, err)
			}
		}
	}
	return nil
}

// marked lists the ids of hookID's deliveries marked kind (every hook's
// when hookID is 0).
func (l *Log) marked(ctx context.Context, kind string, hookID int64) ([]string, error) {
	filter := kind + ".*.*"
	if hookID != 0 {
		filter = kind + "." + strconv.FormatInt(hookID, 10) + ".*"
	}
	kl, err := l.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s deliveries: %w", kind, err)
	}
	defer kl.Stop()
	var ids []string
	for k := range kl.Keys() {
		ids = append(ids, k[strings.LastIndexByte(k, '.')+1:])
	}
	return ids, nil
}

func (l *Log) countMarked(ctx context.Context, kind string, hookID int64) (int, error) {
	ids, err := l.marked(ctx, kind, hookID)
	return len(ids), err
}

// Retry sends the delivery with id again, from its first attempt, in
// order behind what its call has waiting: the event goes back on its
// call's partition, for the delivery's hook alone.
func (l *Log) Retry(ctx context.Context, id string) error {
	r, err := l.Get(ctx, id)
	if err != nil {
		return err
	}
	for _, kind := range []string{deadMark, heldMark} {
		if err := l.kv.Delete(ctx, markKey(kind, r.HookID, r.ID)); err != nil {
			return fmt.Errorf("retry delivery %s: %w", id, err)
		}
	}
	r.Retries++
	r.State, r.Attempts, r.NextAttempt, r.Updated = hooks.Pending, 0, time.Now(), time.Now()
	if err := l.put(ctx, r); err != nil {
		return fmt.Errorf("retry delivery %s: %w", id, err)
	}
	m := nats.NewMsg(Subject(Partition(r.CallID)))
	m.Data = r.EventJSON
	m.Header.Set(headerEventID, r.EventID)
	m.Header.Set(headerHook, strconv.FormatInt(r.HookID, 10))
	m.Header.Set(headerRetry, strconv.Itoa(r.Retries))
	if _, err := l.js.PublishMsg(ctx, m, jetstream.WithMsgID(fmt.Sprintf("retry-%s-%d", r.ID, r.Retries))); err != nil {
		return fmt.Errorf("retry delivery %s: %w", id, err)
	}
	return nil
}

// Headers of a retry: the event's id (a retry's own message id is not
// it), the one hook to send it to, and which retry it is.
const (
	headerEventID = "Kanca-Event-Id"
	headerHook    = "Kanca-Hook"
	headerRetry   = "Kanca-Retry"
)

// RetryDead sends again every dead delivery, of one hook when hookID is
// not 0, and returns how many.
func (l *Log) RetryDead(ctx context.Context, hookID int64) (int, error) {
	return l.release(ctx, deadMark, hookID, false, nil)
}

// release retries, or with discard forgets, the deliveries marked kind.
func (l *Log) release(ctx context.Context, kind string, hookID int64, discard bool, progress func(done, total int)) (int, error) {
	ids, err := l.marked(ctx, kind, hookID)
	if err != nil {
		return 0, err
	}
	// A call's retries go out by seq, so that its worker sends them in
	// order; the marks come in key order.
	recs := make([]Record, 0, len(ids))
	for _, id := range ids {
		r, err := l.Get(ctx, id)
		if errors.Is(err, hooks.ErrNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return 0, err
		}
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b Record) int {
		if c := strings.Compare(a.CallID, b.CallID); c != 0 {
			return c
		}
		return a.Seq - b.Seq
	})
	for i, r := range recs {
		if progress != nil {
			progress(i, len(recs))
		}
		if discard {
			err = errors.Join(l.kv.Delete(ctx, deliveryPrefix+r.ID), l.kv.Delete(ctx, markKey(kind, r.HookID, r.ID)))
		} else {
			err = l.Retry(ctx, r.ID)
		}
		if err != nil {
			return i, err
		}
	}
	return len(recs), nil
}

// Deliveries returns the deliveries f selects, newest change first. It
// reads the whole log unless f asks for dead or held ones, which are
// marked: on a busy cluster, filter.
func (l *Log) Deliveries(ctx context.Context, f hooks.Filter) ([]hooks.Delivery, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = hooks.DefaultListLimit
	}
	var out []hooks.Delivery
	keep := func(r Record) {
		if (f.HookID == 0 || r.HookID == f.HookID) && (f.State == "" || r.State == f.State) &&
			(f.CallID == "" || r.CallID == f.CallID) {
			out = append(out, r.Delivery)
		}
	}
	if f.State == hooks.Dead || f.State == hooks.Held {
		ids, err := l.marked(ctx, string(f.State), f.HookID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			r, err := l.Get(ctx, id)
			if errors.Is(err, hooks.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			keep(r)
		}
	} else {
		w, err := l.kv.Watch(ctx, deliveryPrefix+"*", jetstream.IgnoreDeletes())
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil {
				break
			}
			r, err := decodeRecord(e.Value())
			if err != nil {
				return nil, fmt.Errorf("list deliveries: %s: %w", e.Key(), err)
			}
			keep(r)
		}
	}
	slices.SortFunc(out, func(a, b hooks.Delivery) int { return b.Updated.Compare(a.Updated) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Delivery returns the delivery with id and its attempts, oldest first.
func (l *Log) Delivery(ctx context.Context, id string) (hooks.Delivery, []hooks.Attempt, error) {
	r, err := l.Get(ctx, id)
	if err != nil {
		return hooks.Delivery{}, nil, err
	}
	return r.Delivery, r.Tries, nil
}
