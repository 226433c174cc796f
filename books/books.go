// Package books reads the PBX's own records of its calls (Asterisk's CEL
// and CDR, FreeSWITCH's mod_json_cdr and mod_xml_cdr files, FusionPBX's
// v_xml_cdr table) and turns the calls of a time
// window into tracker inputs, so that what happened while kanca was not
// listening is told from the PBX's books rather than guessed.
//
// The inputs are the PBX-neutral cdr.Input the live sources make, marked
// Books: fed to the same tracker, a call ends with the answer and end
// times, hangup side and cause the PBX wrote down.
package books

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
)

// Books is a PBX's record of its calls.
type Books interface {
	// Calls returns the calls with anything recorded between from and to,
	// each with every input its records say, in the order they happened.
	Calls(ctx context.Context, from, to time.Time) ([]Call, error)
	Close() error
}

// Call is one call as the PBX's books tell it.
type Call struct {
	// ID is the call's id: Asterisk's linkedid, FreeSWITCH's A-leg uuid.
	ID string
	// Legs are the ids of the channels the call had (uniqueid, uuid).
	Legs   []string
	Inputs []cdr.Input // ordered, each marked Books
	// Open says the call's first leg has no record yet: FreeSWITCH writes
	// a leg's file when it ends, so a call the books know only by legs it
	// originated had its first leg still up when they were read. That
	// leg is the channel list's to adopt, whose call it is: told from the
	// other legs alone, the call would stand for another, with the
	// number an originated leg rang instead of the one the call came in
	// on, and be told twice.
	Open bool
}

// Start is when the call's first record says it began.
func (c Call) Start() time.Time {
	if len(c.Inputs) == 0 {
		return time.Time{}
	}
	return c.Inputs[0].Time
}

// Plan picks, from the calls the books hold, what the tracker did not see
// in the gap (since, until]: for a call it follows (follows reports one of
// its legs), the inputs after since; for a call that began in the gap,
// all of them. A call that began before the gap and that the tracker never
// followed is left alone: kanca did not promise it. The inputs of all
// calls are merged in time order, so the tracker meets them as it would
// have live. A call whose first leg has no record yet (Open) is told
// only when the tracker follows it: otherwise the list adopts it, and
// its legs the books hold join it then (Join).
//
// began, when not nil, says which calls began in the gap instead of their
// start being after since, and again which inputs of a call the tracker
// follows, at or before since, are told all the same (see Recover: books
// in whole seconds).
func Plan(calls []Call, since, until time.Time, follows func(leg string) bool, began func(Call) bool, again func(cdr.Input) bool) []cdr.Input {
	if began == nil {
		began = func(c Call) bool { return c.Start().After(since) }
	}
	var out []cdr.Input
	for _, c := range calls {
		known := slices.ContainsFunc(c.Legs, follows)
		if !known && (!began(c) || c.Open) {
			continue
		}
		for _, in := range c.Inputs {
			if in.Time.After(until) {
				break
			}
			if known && !in.Time.After(since) && (again == nil || !again(in)) {
				continue
			}
			out = append(out, in)
		}
	}
	slices.SortStableFunc(out, func(a, b cdr.Input) int { return a.Time.Compare(b.Time) })
	return out
}

// Join picks, from the calls the books hold, those whose first leg has no
// record yet (Open), that a channel list shows (listed reports its
// first leg) and of which the tracker follows no leg: the list adopts
// such a call, and its legs the books hold ended in the gap (a callee
// that answered and transferred it, one a pickup cancelled). Told as a
// call of their own they would be a false call to that callee; left
// untold, the adopted call would lack the steps they were. So they are
// told as part of the adopted call, by its first leg's id, each call's
// inputs up to until, for whoever adopts it to feed once the call is
// adopted, with where the list says it is now placed among them.
func Join(calls []Call, until time.Time, follows, listed func(leg string) bool) map[string][]cdr.Input {
	var out map[string][]cdr.Input
	for _, c := range calls {
		if !c.Open || !listed(c.ID) || follows(c.ID) || slices.ContainsFunc(c.Legs, follows) {
			continue
		}
		var ins []cdr.Input
		for _, in := range c.Inputs {
			if in.Time.After(until) {
				break
			}
			ins = append(ins, in)
		}
		if len(ins) == 0 {
			continue
		}
		if out == nil {
			out = map[string][]cdr.Input{}
		}
		out[c.ID] = ins
	}
	return out
}

// Open opens the books spec names: a MySQL/MariaDB DSN
// (mysql://user:password@host:port/asteriskcdrdb) or a PostgreSQL one
// (postgres://...) holding Asterisk's cel and cdr tables or FusionPBX's
// v_xml_cdr, a directory of FreeSWITCH mod_json_cdr or mod_xml_cdr files
// (*.cdr.json, *.cdr.xml),
// or an Asterisk CEL CSV file (cel_custom), with its CDR (cdr_custom) beside
// it as cdr.csv or Master.csv, or a directory holding them.
func Open(spec string) (Books, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("books: no PBX records given")
	}
	if strings.HasPrefix(spec, "mysql://") || strings.HasPrefix(spec, "mariadb://") {
		return openMySQL(spec)
	}
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		return openPostgres(spec)
	}
	if strings.Contains(spec, "://") {
		return nil, fmt.Errorf("books: %q: unknown kind of PBX records (valid: mysql://..., postgres://..., a directory of mod_json_cdr or mod_xml_cdr files, a CEL CSV file)", spec)
	}
	fi, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("books: %w", err)
	}
	if !fi.IsDir() {
		return &celFiles{cel: spec, cdr: cdrBeside(filepath.Dir(spec))}, nil
	}
	for _, ext := range []string{"*.cdr.json", "*.cdr.xml"} {
		if m, _ := filepath.Glob(filepath.Join(spec, ext)); len(m) > 0 {
			return &fsDir{dir: spec}, nil
		}
	}
	for _, name := range []string{"cel.csv", "Master.csv"} {
		p := filepath.Join(spec, name)
		if _, err := os.Stat(p); err == nil && name == "cel.csv" {
			return &celFiles{cel: p, cdr: cdrBeside(spec)}, nil
		}
	}
	if m, _ := filepath.Glob(filepath.Join(spec, "cel*.csv")); len(m) > 0 {
		return &celFiles{cel: m[0], cdr: cdrBeside(spec)}, nil
	}
	// An empty directory that FreeSWITCH will write mod_json_cdr or
	// mod_xml_cdr files to.
	return &fsDir{dir: spec}, nil
}

// cdrBeside finds the CDR CSV next to a CEL CSV, "" when there is none.
func cdrBeside(dir string) string {
	for _, name := range []string{"cdr.csv", "Master.csv"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// sortCalls orders calls by their start, for reproducible plans.
func sortCalls(calls []Call) {
	slices.SortFunc(calls, func(a, b Call) int {
		return cmp.Or(a.Start().Compare(b.Start()), cmp.Compare(a.ID, b.ID))
	})
}

// touches reports whether any input of c falls in [from, to].
func touches(c Call, from, to time.Time) bool {
	for _, in := range c.Inputs {
		if !in.Time.Before(from) && !in.Time.After(to) {
			return true
		}
	}
	// A call that spans the whole window has rows on both sides.
	return len(c.Inputs) > 0 && c.Inputs[0].Time.Before(from) && c.Inputs[len(c.Inputs)-1].Time.After(to)
}

// toEndOf is the last instant a time in whole seconds or milliseconds may
// stand for (a row stamped in microseconds after it may be its event).
func toEndOf(t time.Time) time.Time {
	switch {
	case t.Nanosecond() == 0:
		return t.Add(time.Second - time.Microsecond)
	case t.Nanosecond()%int(time.Millisecond) == 0:
		return t.Add(time.Millisecond - time.Microsecond)
	}
	return t
}

// Recover reads the calls of the gap (since, until] from b and plans them
// (Plan): what a tracker that follows the legs follows reports needs, in
// time order; and what it is to join to the calls the list shows, whose
// first legs listed reports (Join).
//
// An until of whole seconds is a clock that keeps no more (ARI's list is
// stamped by an HTTP Date): the second it names is read whole, lest the
// events of its last fraction be in neither the books nor the stream. So
// is the millisecond of an until in whole milliseconds (ARI stamps its
// events so, the CEL its rows in microseconds): an event the stream
// stamped until is in the gap, and its row may be up to a millisecond
// later. Likewise the rows of the events the stream stamped since were
// seen live.
//
// Books in whole seconds (FreePBX's CEL) stamp every event of a second at
// its start, so neither end of the gap can be placed within its second
// by time alone (see wholeSecondEnds).
func Recover(ctx context.Context, b Books, since, until time.Time, k Known) (Recovery, error) {
	until = toEndOf(until)
	if since.Nanosecond()%int(time.Millisecond) == 0 && !since.IsZero() {
		// The same holds at the other end, to the millisecond: the rows
		// of the events the stream stamped since were seen live.
		since = since.Add(time.Millisecond - time.Microsecond)
	}
	// Read from the start of since's second: a row in whole seconds of an
	// event after since is stamped before it. Plan takes from books with
	// fractions only what came after since.
	calls, err := b.Calls(ctx, since.Truncate(time.Second), until)
	if err != nil {
		return Recovery{}, fmt.Errorf("books: reading the calls between %s and %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	var began func(Call) bool
	var again func(cdr.Input) bool
	if wholeSecondInputs(calls) {
		calls, began, again = wholeSecondEnds(calls, since, until, k)
	}
	return Recovery{Inputs: Plan(calls, since, until, k.Follows, began, again), Joins: Join(calls, until, k.Follows, k.Listed)}, nil
}

// Known is what kanca knows of the PBX's calls when it reads a gap.
type Known struct {
	// Follows reports a leg the tracker follows.
	Follows func(leg string) bool
	// Listed reports a leg the channel list showed, or whose end the
	// stream read while the list was taken.
	Listed func(leg string) bool
	// Up reports a leg the list showed up, its end still to come (nil:
	// none).
	Up func(leg string) bool
	// Told reports a call, by the books' id, that the store holds as
	// ended (nil: the store cannot say).
	Told func(call string) bool
}

// wholeSecondEnds reads books whose rows keep whole seconds only at the two
// seconds the gap's ends fall in.
//
// The second kanca stopped hearing the PBX in: a call the tracker does
// not follow that began then may have begun after since, unheard. It
// began in the gap unless the store holds it as told (it began and
// ended before since, heard live); when nothing says, it is taken as
// heard, as before since. A call the tracker follows takes, of the rows
// of that second, those that told again say nothing new, answers and
// ends (a state, a hangup request, a destroy): a transfer's steps told
// twice would come out wrong.
//
// The second the stream came back in: whether a call that began then
// began before the list cannot be said; if after, the stream tells it,
// and told now too it would be sent twice. Unless that second is read
// whole (the list's clock keeps no more), such a call is left to the
// stream (one the stream missed is a channel the list shows). A call
// kanca follows takes the rows of that second: told twice, its end is
// still one. But not the end of a leg the list shows up: that is the
// stream's, and told now as well it would end the call before the list
// adopts the leg as a call anew. Its hangup request is kept: it may have
// come before the subscription, and it says who hung up and why.
func wholeSecondEnds(calls []Call, since, until time.Time, k Known) ([]Call, func(Call) bool, func(cdr.Input) bool) {
	calls = slices.Clone(calls)
	cut := until.Truncate(time.Second)
	if until.Nanosecond() != int(time.Second-time.Microsecond) {
		calls = slices.DeleteFunc(calls, func(c Call) bool {
			return !c.Start().Before(cut) && !slices.ContainsFunc(c.Legs, k.Follows)
		})
	}
	for i, c := range calls {
		calls[i].Inputs = slices.DeleteFunc(slices.Clone(c.Inputs), func(in cdr.Input) bool {
			return in.Kind == cdr.KindDestroyed && !in.Time.Before(cut) && k.Up != nil && k.Up(in.Channel.ID)
		})
	}
	second := since.Truncate(time.Second)
	began := func(c Call) bool {
		if c.Start().After(since) {
			return true
		}
		return k.Told != nil && !c.Start().Before(second) && !k.Told(c.ID)
	}
	again := func(in cdr.Input) bool {
		switch in.Kind {
		case cdr.KindState, cdr.KindHangupRequest, cdr.KindDestroyed:
			return !in.Time.Before(second)
		}
		return false
	}
	return calls, began, again
}

// Recovery is what the books tell of a gap.
type Recovery struct {
	// Inputs are what the tracker missed (Plan), in time order.
	Inputs []cdr.Input
	// Joins are the legs that ended in the gap of calls the list shows
	// and the tracker is yet to adopt, by the call's first leg (Join).
	Joins map[string][]cdr.Input
}

// wholeSecondInputs reports whether the books keep whole seconds only:
// no input has a fraction.
func wholeSecondInputs(calls []Call) bool {
	n := 0
	for _, c := range calls {
		for _, in := range c.Inputs {
			if in.Time.Nanosecond() != 0 {
				return false
			}
			n++
		}
	}
	return n > 0
}
