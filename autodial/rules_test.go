package autodial_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/autodial"
)

func TestParseNumbers(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"5321234567", "905321234567", ""},
		{"0532 123 45 67", "905321234567", ""},
		{"+90 (532) 123-4567", "905321234567", ""},
		{"00441234567890", "441234567890", ""},
		{"905321234567", "905321234567", ""},
		{"5321abc", "", "not a phone number"},
		{"12", "", `"12" is not a valid number in TR`},
		// Abroad without its + or 00: not called as a number at home.
		{"4915112345678", "", `"4915112345678" is not a valid number in TR; write a number abroad with its + or 00`},
		{"+49 151 12345678", "4915112345678", ""},
		{"+900037167123456", "", `"+900037167123456" is not a valid phone number`},
		{"", "", "not a phone number"},
	} {
		got, err := nums.Parse(c.in)
		if c.err != "" {
			assert.ErrorContains(t, err, c.err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, got, c.in)
	}
	assert.Equal(t, "05321234567", nums.Dial("905321234567"))
	assert.Equal(t, "00441234567890", nums.Dial("441234567890"))
	l, err := nums.ParseList("5321234567, 05321234567,5329999999")
	require.NoError(t, err)
	assert.Equal(t, []string{"905321234567", "905329999999"}, l, "repeats dropped")
}

func TestKeyRules(t *testing.T) {
	k := testKey()
	k.From = []string{"908508850000", "908508850001"}
	for _, c := range []struct {
		name  string
		req   autodial.Request
		field string
	}{
		{"ok", autodial.Request{Numbers: []string{"905321234567"}, Text: "x"}, ""},
		{"abroad", autodial.Request{Numbers: []string{"441234567890"}, Text: "x"}, "numbers"},
		{"premium", autodial.Request{Numbers: []string{"909001234567"}, Text: "x"}, "numbers"},
		{"from not allowed", autodial.Request{Numbers: []string{"905321234567"}, Text: "x", From: "902120000000"}, "from"},
		{"nothing to play", autodial.Request{Numbers: []string{"905321234567"}}, "text"},
		{"long text", autodial.Request{Numbers: []string{"905321234567"}, Text: string(bytes.Repeat([]byte("a"), 501))}, "text"},
		{"repeat", autodial.Request{Numbers: []string{"905321234567"}, Text: "x", Repeat: 9}, "repeat"},
		{"timeout", autodial.Request{Numbers: []string{"905321234567"}, Text: "x", Timeout: 61}, "timeout"},
		{"no number", autodial.Request{Text: "x"}, "numbers"},
		{"closed window", autodial.Request{Numbers: []string{"905321234567"}, Text: "x", Window: &autodial.Window{}}, "window"},
		{"bad window", autodial.Request{Numbers: []string{"905321234567"}, Text: "x",
			Window: &autodial.Window{Days: [7]autodial.Day{1: {Active: true, Start: "18:00", Finish: "09:00"}}}}, "mon_finish"},
	} {
		err := c.req.Normalize(k, nums.Premium)
		if c.field == "" {
			require.NoError(t, err, c.name)
			assert.Equal(t, "908508850000", c.req.From, "the key's first number by default")
			continue
		}
		var fe *autodial.FieldError
		require.True(t, errors.As(err, &fe), "%s: %v", c.name, err)
		assert.Equal(t, c.field, fe.Field, c.name)
	}
	// A key allowed abroad and premium explicitly.
	k.Allow = []string{"90", "44"}
	k.AllowPremium = true
	r := autodial.Request{Numbers: []string{"441234567890", "909001234567"}, Text: "x"}
	require.NoError(t, r.Normalize(k, nums.Premium))

	// Premium-rate numbers abroad are premium too, by the numbering plan.
	k.AllowPremium = false
	r = autodial.Request{Numbers: []string{"449098790000"}, Text: "x"}
	require.ErrorContains(t, r.Normalize(k, nums.Premium), "449098790000 is a premium-rate number; this key may not call it")
}

func TestWindowNext(t *testing.T) {
	ist := time.FixedZone("+03", 3*3600)
	var w autodial.Window
	for d := time.Monday; d <= time.Friday; d++ {
		w.Days[d] = autodial.Day{Active: true, Start: "09:00", Finish: "18:00"}
	}
	mon := func(h, m int) time.Time { return time.Date(2026, 12, 7, h, m, 0, 0, ist) } // a Monday
	assert.Equal(t, mon(9, 0), w.Next(mon(7, 30), ist), "before opening")
	assert.Equal(t, mon(12, 0), w.Next(mon(12, 0), ist), "inside")
	assert.Equal(t, mon(9, 0).AddDate(0, 0, 1), w.Next(mon(18, 0), ist), "after closing: next day")
	assert.Equal(t, mon(9, 0).AddDate(0, 0, 7), w.Next(mon(20, 0).AddDate(0, 0, 4), ist), "Friday night: Monday")
	// The zone matters: 06:00 UTC is 09:00 in Istanbul.
	assert.Equal(t, mon(9, 0).Unix(), w.Next(time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC), ist).Unix())
	var nilWin *autodial.Window
	assert.Equal(t, mon(3, 0), nilWin.Next(mon(3, 0), ist))
}

func TestKeysStoredHashed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := autodial.Open(path)
	require.NoError(t, err)
	ctx := context.Background()
	secret, err := s.AddKey(ctx, testKey())
	require.NoError(t, err)
	_, err = s.AddKey(ctx, testKey())
	require.ErrorContains(t, err, "exists")
	k, err := s.KeyBySecret(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, "ops", k.Name)
	_, err = s.KeyBySecret(ctx, secret+"x")
	require.ErrorIs(t, err, autodial.ErrNotFound)
	require.NoError(t, s.Close())
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err == nil {
			assert.NotContains(t, string(b), secret, "the secret itself is never stored")
		}
	}
	s, err = autodial.Open(path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.RemoveKey(ctx, "ops"))
	require.ErrorIs(t, s.RemoveKey(ctx, "ops"), autodial.ErrNotFound)
	_, err = s.KeyBySecret(ctx, secret)
	require.ErrorIs(t, err, autodial.ErrNotFound)
}

func TestBudgetPerDay(t *testing.T) {
	s, err := autodial.Open(filepath.Join(t.TempDir(), "c.db"))
	require.NoError(t, err)
	defer s.Close()
	k := testKey()
	k.DailyBudget = 3
	r := autodial.Request{Numbers: []string{"905321111111", "905322222222"}, Text: "x"}
	require.NoError(t, r.Normalize(k, nil))
	now := time.Now()
	_, err = s.Enqueue(context.Background(), k, "api", "t", r, now, "2026-12-06")
	require.NoError(t, err)
	_, err = s.Enqueue(context.Background(), k, "api", "t", r, now, "2026-12-06")
	require.ErrorIs(t, err, autodial.ErrBudget)
	_, err = s.Enqueue(context.Background(), k, "api", "t", r, now, "2026-12-07")
	require.NoError(t, err, "a new day, a new budget")
	vs, err := s.Requests(context.Background(), "ops", 0, 0)
	require.NoError(t, err)
	assert.Len(t, vs, 2, "the refused request stored nothing")
}

func TestPathFor(t *testing.T) {
	assert.Equal(t, "/var/lib/kanca/kanca.calls.db", autodial.PathFor("/var/lib/kanca/kanca.db"))
	assert.Equal(t, "x.calls.db", autodial.PathFor("x"))
}

func TestESLOriginateCommand(t *testing.T) {
	d := autodial.ESLDialer{Context: "default"}
	p := autodial.Placement{Channel: "kanca-ad-1", Dial: "05321234567", Endpoint: "sofia/gateway/carrier/05321234567", CallerID: "908508850000", Timeout: 30 * time.Second}
	assert.Equal(t, "originate {origination_uuid=kanca-ad-1,origination_caller_id_number=908508850000,originate_timeout=30,ignore_early_media=true}sofia/gateway/carrier/05321234567 &park()",
		d.OriginateCommand(p))
	p.Destination = "1000"
	assert.Equal(t, "originate {origination_uuid=kanca-ad-1,origination_caller_id_number=908508850000,originate_timeout=30,ignore_early_media=true}sofia/gateway/carrier/05321234567 1000 XML default",
		d.OriginateCommand(p))
}
