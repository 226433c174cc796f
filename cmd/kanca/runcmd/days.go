package runcmd

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// days is a duration flag that also takes whole days (30d), as retention
// periods are thought of; Go's durations stop at hours.
type days time.Duration

func (d *days) String() string {
	const day = 24 * time.Hour
	if v := time.Duration(*d); v > 0 && v%day == 0 {
		return strconv.FormatInt(int64(v/day), 10) + "d"
	}
	return time.Duration(*d).String()
}

func (d *days) Type() string { return "duration" }

func (d *days) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return fmt.Errorf("%q: want whole days (30d) or a duration (720h)", s)
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want a duration (720h) or whole days (30d)", s)
	}
	*d = days(v)
	return nil
}
