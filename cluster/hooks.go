package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanca/kanca/hooks"
)

// Hooks are the hooks kept in the cluster (HooksBucket): what `kanca hooks
// --nats` changes and every worker watches. A key-value bucket, because
// a hook is a small record read far more than written, every worker wants
// each change within a second (a watch), and two admins must not lose
// each other's edits (updates compare the revision they read).
type Hooks struct {
	kv  jetstream.KeyValue
	log *Log
}

// nextKey holds the last hook id given.
const nextKey = "next"

// Hooks opens the hooks bucket, creating it if it is missing.
func (c *Conn) Hooks(ctx context.Context) (*Hooks, error) {
	kv, err := c.bucket(ctx, jetstream.KeyValueConfig{Bucket: HooksBucket, Description: "kanca hooks", History: 1})
	if err != nil {
		return nil, err
	}
	l, err := c.Log(ctx)
	if err != nil {
		return nil, err
	}
	return &Hooks{kv: kv, log: l}, nil
}

// storedHook is a hook as the bucket keeps it: credentials included
// (Hook's own JSON masks them) and the timeout in milliseconds.
type storedHook struct {
	plainHook
	TimeoutMS int64 `json:"timeout_ms"`
}

type plainHook hooks.Hook

func encodeHook(h hooks.Hook) []byte {
	h.Held = 0
	b, _ := json.Marshal(storedHook{plainHook(h), h.Timeout.Milliseconds()}) // plain fields only: cannot fail
	return b
}

func decodeHook(b []byte) (hooks.Hook, error) {
	var s storedHook
	if err := json.Unmarshal(b, &s); err != nil {
		return hooks.Hook{}, err
	}
	h := hooks.Hook(s.plainHook)
	h.Timeout = time.Duration(s.TimeoutMS) * time.Millisecond
	return h, nil
}

func hookKey(id int64) string { return strconv.FormatInt(id, 10) }

// Where names the cluster for messages.
func (hs *Hooks) Where() string { return "the NATS cluster (bucket " + HooksBucket + ")" }

// AddHook validates h and stores it, enabled, under the next id.
func (hs *Hooks) AddHook(ctx context.Context, h hooks.Hook) (hooks.Hook, error) {
	h, err := hooks.NewHook(h, time.Now())
	if err != nil {
		return hooks.Hook{}, err
	}
	if h.ID, err = hs.nextID(ctx); err != nil {
		return hooks.Hook{}, err
	}
	if _, err := hs.kv.Create(ctx, hookKey(h.ID), encodeHook(h)); err != nil {
		return hooks.Hook{}, fmt.Errorf("add hook for %s: %w", h.Number, err)
	}
	return h, nil
}

// nextID takes the next hook id: a counter moved by compare-and-set, so
// two admins adding at once get different ids.
func (hs *Hooks) nextID(ctx context.Context) (int64, error) {
	for {
		e, err := kvGet(ctx, hs.kv, nextKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := hs.kv.Create(ctx, nextKey, []byte("1")); err == nil {
				return 1, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("next hook id: %w", err)
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("next hook id: %w", err)
		}
		n, err := strconv.ParseInt(string(e.Value()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("next hook id: %q: %w", e.Value(), err)
		}
		if _, err := hs.kv.Update(ctx, nextKey, []byte(strconv.FormatInt(n+1, 10)), e.Revision()); err == nil {
			return n + 1, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("next hook id: %w", err)
		}
	}
}

// GetHook returns the hook with id; the error wraps hooks.ErrNotFound if
// none.
func (hs *Hooks) GetHook(ctx context.Context, id int64) (hooks.Hook, error) {
	h, _, err := hs.get(ctx, id)
	if err != nil {
		return h, err
	}
	h.Held, err = hs.log.countMarked(ctx, heldMark, id)
	return h, err
}

func (hs *Hooks) get(ctx context.Context, id int64) (hooks.Hook, uint64, error) {
	e, err := kvGet(ctx, hs.kv, hookKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return hooks.Hook{}, 0, fmt.Errorf("hook %d: %w", id, hooks.ErrNotFound)
	}
	if err != nil {
		return hooks.Hook{}, 0, fmt.Errorf("get hook %d: %w", id, err)
	}
	h, err := decodeHook(e.Value())
	if err != nil {
		return hooks.Hook{}, 0, fmt.Errorf("hook %d: %w", id, err)
	}
	return h, e.Revision(), nil
}

// ListHooks returns every hook, by id.
func (hs *Hooks) ListHooks(ctx context.Context) ([]hooks.Hook, error) {
	out, err := hs.all(ctx)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Held, err = hs.log.countMarked(ctx, heldMark, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (hs *Hooks) all(ctx context.Context) ([]hooks.Hook, error) {
	w, err := hs.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	defer w.Stop()
	var out []hooks.Hook
	for e := range w.Updates() {
		if e == nil {
			break // the current values are all in
		}
		if e.Key() == nextKey || e.Operation() != jetstream.KeyValuePut {
			continue
		}
		h, err := decodeHook(e.Value())
		if err != nil {
			return nil, fmt.Errorf("list hooks: key %s: %w", e.Key(), err)
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b hooks.Hook) int { return int(a.ID - b.ID) })
	return out, nil
}

// change applies f to the hook with id, again if someone else changed it
// in between.
func (hs *Hooks) change(ctx context.Context, id int64, f func(hooks.Hook) (hooks.Hook, error)) (hooks.Hook, error) {
	for {
		h, rev, err := hs.get(ctx, id)
		if err != nil {
			return hooks.Hook{}, err
		}
		if h, err = f(h); err != nil {
			return hooks.Hook{}, err
		}
		_, err = hs.kv.Update(ctx, hookKey(id), encodeHook(h), rev)
		if err == nil {
			return h, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return hooks.Hook{}, fmt.Errorf("update hook %d: %w", id, err)
		}
	}
}

// UpdateHook applies u to the hook with id, validating the result.
func (hs *Hooks) UpdateHook(ctx context.Context, id int64, u hooks.HookUpdate) (hooks.Hook, error) {
	return hs.change(ctx, id, func(h hooks.Hook) (hooks.Hook, error) { return u.Apply(h, time.Now()) })
}

// RemoveHook deletes the hook with id; workers stop sending to it within
// a second. Its log stays until it expires.
func (hs *Hooks) RemoveHook(ctx context.Context, id int64) error {
	if _, _, err := hs.get(ctx, id); err != nil {
		return err
	}
	if err := hs.kv.Delete(ctx, hookKey(id)); err != nil {
		return fmt.Errorf("remove hook %d: %w", id, err)
	}
	return nil
}

// SetEnabled enables or disables the hook with id. While it is disabled
// the workers hold its events (state held); Enable releases them.
func (hs *Hooks) SetEnabled(ctx context.Context, id int64, enabled bool) error {
	if enabled {
		_, err := hs.Enable(ctx, id, false)
		return err
	}
	_, err := hs.change(ctx, id, func(h hooks.Hook) (hooks.Hook, error) {
		h.Enabled, h.DisabledReason, h.Updated = false, "", time.Now()
		return h, nil
	})
	return err
}

// Enable enables the hook with id, then releases the deliveries held
// while it was disabled (sent again, in order per call) or, with discard,
// forgets them. It returns how many.
func (hs *Hooks) Enable(ctx context.Context, id int64, discard bool) (int, error) {
	if _, err := hs.change(ctx, id, func(h hooks.Hook) (hooks.Hook, error) {
		h.Enabled, h.DisabledReason, h.Updated = true, "", time.Now()
		return h, nil
	}); err != nil {
		return 0, err
	}
	return hs.log.release(ctx, heldMark, id, discard, nil)
}

// disable is a worker's: the receiver answered 410 Gone.
func (hs *Hooks) disable(ctx context.Context, id int64, reason string) error {
	_, err := hs.change(ctx, id, func(h hooks.Hook) (hooks.Hook, error) {
		h.Enabled, h.DisabledReason, h.Updated = false, reason, time.Now()
		return h, nil
	})
	return err
}

// The delivery log, through the hooks (hooks.DeliveryLog).

// Deliveries lists the log's deliveries (Log.Deliveries).
func (hs *Hooks) Deliveries(ctx context.Context, f hooks.Filter) ([]hooks.Delivery, error) {
	return hs.log.Deliveries(ctx, f)
}

// Behind is not known in the cluster: a call's queue lives in its
// worker's memory.
func (hs *Hooks) Behind(context.Context, []hooks.Delivery) (map[string]int, error) { return nil, nil }

// Delivery returns one delivery and its attempts.
func (hs *Hooks) Delivery(ctx context.Context, id string) (hooks.Delivery, []hooks.Attempt, error) {
	return hs.log.Delivery(ctx, id)
}

// Retry sends one delivery again (Log.Retry).
func (hs *Hooks) Retry(ctx context.Context, id string) error { return hs.log.Retry(ctx, id) }

// RetryDeadProgress sends every dead delivery again, of one hook when
// hookID is not 0, reporting progress.
func (hs *Hooks) RetryDeadProgress(ctx context.Context, hookID int64, progress func(done, total int)) (int, error) {
	return hs.log.release(ctx, deadMark, hookID, false, progress)
}

// kvGet reads key, asking again for a moment while no replica answers (a
// bucket just made, a leader being elected).
func kvGet(ctx context.Context, kv jetstream.KeyValue, key string) (e jetstream.KeyValueEntry, err error) {
	err = untilAnswered(ctx, func(ctx context.Context) error {
		e, err = kv.Get(ctx, key)
		return err
	})
	return e, err
}
