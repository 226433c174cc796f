package hooks

import (
	"log/slog"
	"sync"
)

// Receivers logs when a hook's receiver starts failing and when it
// answers again, at WARN, so an admin who logs warnings only sees both
// ends of an outage; each attempt that fails in between stays at INFO.
// Safe for concurrent use.
type Receivers struct {
	log     *slog.Logger
	mu      sync.Mutex
	failing map[int64]bool
}

// NewReceivers logs to log.
func NewReceivers(log *slog.Logger) *Receivers {
	return &Receivers{log: log, failing: map[int64]bool{}}
}

// Failed logs an attempt to h that failed and will be retried.
func (r *Receivers) Failed(h Hook, delivery, event string, attempt int, err string, next any) {
	r.mu.Lock()
	first := !r.failing[h.ID]
	r.failing[h.ID] = true
	r.mu.Unlock()
	if first {
		r.log.Warn("receiver failing: its deliveries are kept and retried", "hook", h, "err", err,
			"delivery", delivery, "event", event, "next", next)
		return
	}
	r.log.Info("delivery failed, will retry", "delivery", delivery, "hook", h, "event", event,
		"attempt", attempt, "err", err, "next", next)
}

// Delivered notes an attempt to h that was delivered.
func (r *Receivers) Delivered(h Hook) {
	r.mu.Lock()
	was := r.failing[h.ID]
	delete(r.failing, h.ID)
	r.mu.Unlock()
	if was {
		r.log.Warn("receiver answering again", "hook", h)
	}
}
