// Package backoff computes the waits between connection attempts that the
// PBX sources share, so Asterisk and FreeSWITCH are retried alike.
package backoff

import "time"

// Wait is the pause before attempt number attempt (0-based): initial,
// doubling up to max, then spread by ±jitter (a fraction) using r, a value
// in [0,1), so a fleet of kanca instances does not reconnect in step after
// a PBX restart.
func Wait(initial, max time.Duration, jitter float64, attempt int, r float64) time.Duration {
	d := initial
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return time.Duration(float64(d) * (1 + jitter*(2*r-1)))
}
