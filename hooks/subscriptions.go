package hooks

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/templates"
)

// A subscription file has Hotline's shape, one JSON object mapping each
// URL to the events it wants:
//
//	{"https://crm.example/hook": ["call_init", "call_hangup"]}
//
// extended by kanca: a URL may map to an object of a hook's fields
// (Subscription), or to a list of them for several numbers.

// Subscription is one hook in a subscription file. Credentials are given
// as values or read from the environment (password_env, secret_env); the
// mask (****) that export writes keeps the stored value.
type Subscription struct {
	Number             string            `json:"number,omitempty"`
	Events             []string          `json:"events,omitempty"`
	Format             string            `json:"format,omitempty"`
	Method             string            `json:"method,omitempty"`
	Preset             string            `json:"preset,omitempty"`
	Lang               string            `json:"lang,omitempty"`
	TZ                 string            `json:"tz,omitempty"`
	Templates          *templates.Set    `json:"templates,omitempty"`
	Params             map[string]string `json:"params,omitempty"`
	User               string            `json:"user,omitempty"`
	Password           string            `json:"password,omitempty"`
	PasswordEnv        string            `json:"password_env,omitempty"`
	Secret             string            `json:"secret,omitempty"`
	SecretEnv          string            `json:"secret_env,omitempty"`
	DomainID           *int64            `json:"domain_id,omitempty"`
	AccountID          *int64            `json:"account_id,omitempty"`
	Timeout            string            `json:"timeout,omitempty"`
	InsecureSkipVerify bool              `json:"insecure_skip_verify,omitempty"`
	MaxInFlight        int               `json:"max_in_flight,omitempty"`
	// Disabled adds the hook disabled, or disables it; an import never
	// enables a hook (kanca hooks enable says what its held events become).
	Disabled bool `json:"disabled,omitempty"`
}

// ParseSubscriptions reads a subscription file into hooks, defaults
// filled. number is the number of entries that name none (Hotline's
// lists); getenv resolves password_env and secret_env. Every problem of
// every entry is reported, by URL.
func ParseSubscriptions(r io.Reader, number string, getenv func(string) (string, bool)) ([]Hook, error) {
	var file map[string]json.RawMessage
	dec := json.NewDecoder(r)
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("subscription file: not a JSON object of URL to events: %w", err)
	}
	var out []Hook
	var probs []string
	for _, u := range slices.Sorted(maps.Keys(file)) {
		subs, err := entries(file[u])
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", u, err))
			continue
		}
		for _, sub := range subs {
			h, err := sub.hook(u, number, getenv)
			if err != nil {
				probs = append(probs, fmt.Sprintf("%s: %v", u, err))
				continue
			}
			out = append(out, h)
		}
	}
	if len(probs) > 0 {
		return nil, fmt.Errorf("subscription file: %s", strings.Join(probs, "; "))
	}
	return out, nil
}

// entries reads one URL's value: a list of events, an object, or a list
// of objects.
func entries(raw json.RawMessage) ([]Subscription, error) {
	raw = bytes.TrimSpace(raw)
	strict := func(b []byte, v any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	switch {
	case len(raw) > 0 && raw[0] == '{':
		var s Subscription
		if err := strict(raw, &s); err != nil {
			return nil, err
		}
		return []Subscription{s}, nil
	case len(raw) > 0 && raw[0] == '[':
		var evs []string
		if err := json.Unmarshal(raw, &evs); err == nil {
			return []Subscription{{Events: evs}}, nil
		}
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
		out := make([]Subscription, len(list))
		for i, b := range list {
			if err := strict(b, &out[i]); err != nil {
				return nil, fmt.Errorf("entry %d: %w", i+1, err)
			}
		}
		return out, nil
	}
	return nil, errors.New("must be a list of events, an object of hook fields, or a list of such objects")
}

func (s Subscription) hook(u, number string, getenv func(string) (string, bool)) (Hook, error) {
	h := Hook{
		Number: s.Number, URL: u, Events: s.Events, Format: formats.Format(s.Format),
		Method: strings.ToUpper(s.Method), Preset: s.Preset, Lang: s.Lang, TZ: s.TZ, Params: s.Params,
		User: s.User, Password: s.Password, Secret: s.Secret,
		DomainID: s.DomainID, AccountID: s.AccountID, InsecureSkipVerify: s.InsecureSkipVerify,
		MaxInFlight: s.MaxInFlight, Enabled: !s.Disabled,
	}
	if h.Number == "" {
		h.Number = number
	}
	if h.Number == "" {
		return Hook{}, errors.New("no number: give one in the entry or with --number")
	}
	if s.Templates != nil {
		h.Templates = *s.Templates
	}
	fromEnv := func(dst *string, direct, env, what string) error {
		if env == "" {
			return nil
		}
		if direct != "" {
			return fmt.Errorf("%s and %s_env both given", what, what)
		}
		v, ok := getenv(env)
		if !ok {
			return fmt.Errorf("%s_env: environment variable %s is not set", what, env)
		}
		*dst = v
		return nil
	}
	if err := fromEnv(&h.Password, s.Password, s.PasswordEnv, "password"); err != nil {
		return Hook{}, err
	}
	if err := fromEnv(&h.Secret, s.Secret, s.SecretEnv, "secret"); err != nil {
		return Hook{}, err
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil {
			return Hook{}, fmt.Errorf("timeout %q: %w", s.Timeout, err)
		}
		h.Timeout = d
	}
	return h.withDefaults(), nil
}

// ExportSubscriptions writes hs as a subscription file, credentials
// masked: importing it back changes nothing.
func ExportSubscriptions(w io.Writer, hs []Hook) error {
	byURL := map[string][]Subscription{}
	for _, h := range hs {
		m := h.Masked()
		s := Subscription{
			Number: m.Number, Events: m.Events, Format: string(m.Format), Method: m.Method,
			Preset: m.Preset, Lang: m.Lang, TZ: m.TZ, Params: m.Params,
			User: m.User, Password: m.Password, Secret: m.Secret,
			DomainID: m.DomainID, AccountID: m.AccountID, Timeout: m.Timeout.String(),
			InsecureSkipVerify: m.InsecureSkipVerify, MaxInFlight: m.MaxInFlight, Disabled: !m.Enabled,
		}
		if !m.Templates.IsZero() {
			s.Templates = &m.Templates
		}
		byURL[h.URL] = append(byURL[h.URL], s)
	}
	file := map[string]any{}
	for u, subs := range byURL {
		if len(subs) == 1 {
			file[u] = subs[0]
		} else {
			file[u] = subs
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(file)
}

// ImportReport says what an import did, hook by hook.
type ImportReport struct {
	Added, Changed, Unchanged []Hook
	// What, by hook id, the import changed of each changed hook.
	What map[int64][]string
}

// Import makes the store hold hs, matching hooks by number and URL: new
// ones are added, differing ones changed, equal ones left alone; hooks
// not in hs are not touched. Each of hs is the whole hook: a setting it
// leaves out is the default. Every hook is validated first and the
// changes are one transaction, so an import applies whole or not at all,
// and importing the same hooks again changes nothing. A masked credential
// keeps the stored one. A hook of hs that is not Enabled is added
// disabled, or disabled; an import enables none.
func (s *Store) Import(ctx context.Context, hs []Hook) (ImportReport, error) {
	var rep ImportReport
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return rep, fmt.Errorf("import hooks: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT "+hookColumns+" FROM hooks ORDER BY id")
	if err != nil {
		return rep, fmt.Errorf("import hooks: %w", err)
	}
	existing := map[[2]string][]Hook{}
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			rows.Close()
			return rep, fmt.Errorf("import hooks: %w", err)
		}
		k := identity(h)
		existing[k] = append(existing[k], h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("import hooks: %w", err)
	}
	type op struct {
		h       Hook
		add     bool
		disable bool
	}
	var ops []op
	var probs []string
	seen := map[[2]string]bool{}
	rep.What = map[int64][]string{}
	for _, h := range hs {
		// Matched as stored: +90 850 885 00 00 is 908508850000.
		h.Number = plainNumber(h.Number)
		k := identity(h)
		if seen[k] {
			probs = append(probs, fmt.Sprintf("%s for %s given twice", redactURL(h.URL), h.Number))
			continue
		}
		seen[k] = true
		var old *Hook
		switch olds := existing[k]; len(olds) {
		case 0:
		case 1:
			old = &olds[0]
		default:
			probs = append(probs, fmt.Sprintf("%s for %s matches %d hooks; remove all but one first", redactURL(h.URL), h.Number, len(olds)))
			continue
		}
		if err := keepMasked(&h, old); err != nil {
			probs = append(probs, fmt.Sprintf("%s for %s: %v", redactURL(h.URL), h.Number, err))
			continue
		}
		if err := h.Validate(); err != nil {
			probs = append(probs, fmt.Sprintf("%s for %s: %v", redactURL(h.URL), h.Number, err))
			continue
		}
		if old == nil {
			ops = append(ops, op{h: h, add: true})
			continue
		}
		what := differences(*old, h)
		disable := old.Enabled && !h.Enabled
		if disable {
			what = append(what, "disabled")
		}
		if len(what) == 0 {
			rep.Unchanged = append(rep.Unchanged, *old)
			continue
		}
		h.ID, h.Created, h.Enabled, h.DisabledReason = old.ID, old.Created, old.Enabled && !disable, old.DisabledReason
		if disable {
			h.DisabledReason = ""
		}
		rep.What[h.ID] = what
		ops = append(ops, op{h: h, disable: disable})
	}
	if len(probs) > 0 {
		return ImportReport{}, fmt.Errorf("import hooks: nothing imported: %s", strings.Join(probs, "; "))
	}
	now := time.Now()
	for _, o := range ops {
		h := o.h
		h.Updated = now
		if o.add {
			h.Created = now
			if h, err = insertHook(ctx, tx, h); err != nil {
				return ImportReport{}, err
			}
			rep.Added = append(rep.Added, h)
			continue
		}
		if err := updateHook(ctx, tx, h); err != nil {
			return ImportReport{}, err
		}
		if o.disable {
			// As kanca hooks disable does: its events are held from now.
			if _, err := tx.ExecContext(ctx, "UPDATE hooks SET enabled = 0, disabled_reason = '' WHERE id = ?", h.ID); err != nil {
				return ImportReport{}, fmt.Errorf("import hooks: disable hook %d: %w", h.ID, err)
			}
		}
		rep.Changed = append(rep.Changed, h)
	}
	if err := tx.Commit(); err != nil {
		return ImportReport{}, fmt.Errorf("import hooks: %w", err)
	}
	return rep, nil
}

// keepMasked puts the stored credentials where the file has the mask.
func keepMasked(h *Hook, old *Hook) error {
	keep := func(dst *string, stored string, what string) error {
		if *dst != Mask {
			return nil
		}
		if old == nil || stored == "" {
			return fmt.Errorf("%s is masked (%s) but no hook stores one to keep", what, Mask)
		}
		*dst = stored
		return nil
	}
	var oldPass, oldSecret string
	var oldParams map[string]string
	if old != nil {
		oldPass, oldSecret, oldParams = old.Password, old.Secret, old.Params
	}
	if err := keep(&h.Password, oldPass, "password"); err != nil {
		return err
	}
	if err := keep(&h.Secret, oldSecret, "secret"); err != nil {
		return err
	}
	if len(h.Params) > 0 {
		ps := maps.Clone(h.Params)
		for k, v := range ps {
			if err := keep(&v, oldParams[k], "param "+k); err != nil {
				return err
			}
			ps[k] = v
		}
		h.Params = ps
	}
	return nil
}

// differences names the settings an import sets that differ between a and
// b (number and URL, by which it matched them, aside).
func differences(a, b Hook) []string {
	eqPtr := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	var d []string
	for _, f := range []struct {
		name string
		same bool
	}{
		{"events", slices.Equal(a.Events, b.Events)},
		{"format", a.Format == b.Format},
		{"method", a.Method == b.Method},
		{"preset", a.Preset == b.Preset},
		{"lang", a.Lang == b.Lang},
		{"tz", a.TZ == b.TZ},
		{"templates", a.Templates.Equal(b.Templates)},
		{"params", maps.Equal(a.Params, b.Params)},
		{"user", a.User == b.User},
		{"password", a.Password == b.Password},
		{"secret", a.Secret == b.Secret},
		{"domain_id", eqPtr(a.DomainID, b.DomainID)},
		{"account_id", eqPtr(a.AccountID, b.AccountID)},
		{"timeout", a.Timeout == b.Timeout},
		{"insecure_skip_verify", a.InsecureSkipVerify == b.InsecureSkipVerify},
		{"max_in_flight", a.MaxInFlight == b.MaxInFlight},
	} {
		if !f.same {
			d = append(d, f.name)
		}
	}
	return d
}

// insertHook stores a validated hook.
func insertHook(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, h Hook) (Hook, error) {
	res, err := db.ExecContext(ctx, `INSERT INTO hooks (number, url, events, format, username, password, secret,
		domain_id, account_id, enabled, disabled_reason, timeout_ms, insecure_skip_verify, created_at, updated_at,
		method, preset, lang, tz, templates, params, max_in_flight)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		append(append([]any{h.Number, h.URL, strings.Join(h.Events, ","), string(h.Format), h.User, h.Password, h.Secret,
			nullInt(h.DomainID), nullInt(h.AccountID), boolInt(h.Enabled), h.DisabledReason, h.Timeout.Milliseconds(),
			boolInt(h.InsecureSkipVerify), ms(h.Created), ms(h.Updated)},
			requestColumns(h)...), h.MaxInFlight)...)
	if err != nil {
		return Hook{}, fmt.Errorf("add hook for %s: %w", h.Number, err)
	}
	if h.ID, err = res.LastInsertId(); err != nil {
		return Hook{}, fmt.Errorf("add hook for %s: %w", h.Number, err)
	}
	return h, nil
}

// identity is what an import knows a hook by: its number and URL.
func identity(h Hook) [2]string { return [2]string{h.Number, h.URL} }

// Twins returns the ids of the other hooks in hs that share h's number and
// URL: each gets the same calls, and an import, which knows a hook by its
// number and URL, cannot tell them apart.
func Twins(hs []Hook, h Hook) []int64 {
	var ids []int64
	for _, o := range hs {
		if o.ID != h.ID && identity(o) == identity(h) {
			ids = append(ids, o.ID)
		}
	}
	return ids
}
