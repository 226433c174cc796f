package hooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

func TestParseNetPolicy(t *testing.T) {
	p, err := ParseNetPolicy([]string{"10.0.0.5/8", " 192.168.1.7 ", ""}, []string{"fd00::/8", "10.0.0.1"})
	require.NoError(t, err)
	assert.Equal(t, "allow 10.0.0.0/8,192.168.1.7/32; deny fd00::/8,10.0.0.1/32", p.String())
	assert.False(t, p.IsZero())

	zero, err := ParseNetPolicy(nil, []string{""})
	require.NoError(t, err)
	assert.True(t, zero.IsZero())
	assert.Equal(t, "any destination", zero.String())

	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0", "fe80::1%eth0"} {
		_, err := ParseNetPolicy(nil, []string{bad})
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "deny list")
		assert.Contains(t, err.Error(), bad)
	}
}

func TestNetPolicyCheck(t *testing.T) {
	p, err := ParseNetPolicy([]string{"10.0.0.0/8", "2001:db8::/32"}, []string{"10.9.0.0/16", "fe80::/10"})
	require.NoError(t, err)
	cases := []struct {
		ip   string
		want string // "" allowed
	}{
		{"10.1.2.3", ""},
		{"2001:db8::1", ""},
		{"10.9.0.1", "10.9.0.1 is in denied network 10.9.0.0/16"},
		{"::ffff:10.9.0.1", "10.9.0.1 is in denied network 10.9.0.0/16"}, // mapped: same address
		{"::ffff:10.1.2.3", ""},
		{"192.168.0.1", "192.168.0.1 is outside the allowed networks 10.0.0.0/8,2001:db8::/32"},
		{"127.0.0.1", "outside the allowed networks"},
		{"fe80::1%eth0", "in denied network fe80::/10"}, // a zone does not hide the address
	}
	for _, c := range cases {
		err := p.Check(netip.MustParseAddr(c.ip))
		if c.want == "" {
			assert.NoError(t, err, c.ip)
			continue
		}
		require.Error(t, err, c.ip)
		assert.ErrorIs(t, err, ErrRefusedDestination)
		assert.Contains(t, err.Error(), c.want)
	}
	assert.NoError(t, NetPolicy{}.Check(netip.MustParseAddr("127.0.0.1")), "the zero policy allows all")
}

// loopback is every way this machine may reach itself.
var loopback = []string{"127.0.0.0/8", "::1"}

func TestCheckURLResolvesTheHost(t *testing.T) {
	ctx := context.Background()
	p, err := ParseNetPolicy(nil, loopback)
	require.NoError(t, err)
	errs := p.CheckURL(ctx, net.DefaultResolver, "http://localhost:8080/hook")
	require.NotEmpty(t, errs, "localhost resolves into the denied loopback")
	for _, err := range errs {
		assert.ErrorIs(t, err, ErrRefusedDestination)
		assert.Contains(t, err.Error(), "localhost: ")
	}
	assert.Len(t, p.CheckURL(ctx, net.DefaultResolver, "http://127.0.0.9/"), 1, "a literal address needs no lookup")
	assert.Empty(t, p.CheckURL(ctx, net.DefaultResolver, "http://192.0.2.1/"))
	assert.Empty(t, p.CheckURL(ctx, net.DefaultResolver, "http://name.invalid/"), "unresolvable here: no advice")
	assert.Empty(t, NetPolicy{}.CheckURL(ctx, net.DefaultResolver, "http://localhost/"))
}

// The policy is applied to the address dialled, not to the name in the
// URL: a name resolving into a denied network is refused at connect time,
// whatever it resolved to when the hook was added.
func TestSenderRefusesDeniedDestination(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	byName := "http://localhost:" + u.Port() + "/hook"

	deny, err := ParseNetPolicy(nil, loopback)
	require.NoError(t, err)
	onlyTen, err := ParseNetPolicy([]string{"10.0.0.0/8"}, nil)
	require.NoError(t, err)
	allowLoop, err := ParseNetPolicy(loopback, []string{"10.0.0.0/8"})
	require.NoError(t, err)

	for _, c := range []struct {
		name   string
		policy NetPolicy
		url    string
		want   string // "" delivered
	}{
		{"denied by name", deny, byName, "in denied network"},
		{"denied by address", deny, srv.URL, "127.0.0.1 is in denied network 127.0.0.0/8"},
		{"outside the allow list", onlyTen, byName, "outside the allowed networks 10.0.0.0/8"},
		{"allowed", allowLoop, srv.URL, ""},
		{"no policy", NetPolicy{}, srv.URL, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := hits.Load()
			snd := newSender(time.Second, time.Now, c.policy)
			defer snd.close()
			for _, cl := range []*http.Client{snd.verify, snd.insecure} {
				// Through a proxy the dialled address would be the proxy's.
				assert.Equal(t, c.policy.IsZero(), cl.Transport.(*http.Transport).Proxy != nil, "proxy only without a policy")
			}
			r := snd.send(ctx, Hook{URL: c.url, Timeout: 5 * time.Second}, Delivery{ID: "d1", Body: []byte("{}")})
			if c.want == "" {
				require.NoError(t, r.Err)
				assert.True(t, r.OK())
				assert.Equal(t, before+1, hits.Load())
				return
			}
			require.Error(t, r.Err)
			assert.ErrorIs(t, r.Err, ErrRefusedDestination)
			assert.Contains(t, r.errText(), c.want)
			assert.Zero(t, r.Status)
			assert.Equal(t, before, hits.Load(), "no request reached the denied server")
		})
	}
}

// A refusal is an ordinary failed attempt: recorded with its reason and
// retried (the policy or the DNS may change).
func TestDispatcherRecordsRefusal(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a denied hook was reached: %s", r.URL)
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL})
	enqueueAt(t, s, fixed, event("call-1", 1, cdr.CallInit))
	policy, err := ParseNetPolicy(nil, loopback)
	require.NoError(t, err)

	_, stop := run(t, s, DispatchOptions{Retry: oneShot, Now: fixedNow, NetPolicy: policy})
	waitFor(t, "the first attempt", func() bool {
		ds := deliveries(t, s, Filter{})
		return len(ds) == 1 && ds[0].Attempts > 0
	})
	require.NoError(t, stop())
	d := deliveries(t, s, Filter{})[0]
	assert.Equal(t, Retrying, d.State)
	assert.Contains(t, d.LastError, "destination refused by the hook network policy: 127.0.0.1 is in denied network 127.0.0.0/8")

	// hooks test goes through the same sender.
	h, err := s.GetHook(ctx, 1)
	require.NoError(t, err)
	res, err := NewDispatcher(s, DispatchOptions{Logger: quiet, NetPolicy: policy}).Test(ctx, h, SampleEvent(cdr.CallHangup, h.Number, fixed), Encoding{})
	require.NoError(t, err)
	assert.True(t, errors.Is(res.Err, ErrRefusedDestination), "%v", res.Err)
}
