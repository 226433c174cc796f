package doctor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/hooks"
)

// closedURL is an address nobody listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// database holds one hook whose host answers (with a 405 to HEAD: any
// answer counts) and one whose host is down, plus a disabled one that is
// not checked.
func database(t *testing.T) (path string, up, down hooks.Hook) {
	t.Helper()
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	t.Cleanup(recv.Close)
	path = filepath.Join(t.TempDir(), "kanca.db")
	s, err := hooks.Open(path)
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	up, err = s.AddHook(ctx, hooks.Hook{Number: "908508850000", URL: recv.URL + "/kanca?token=t0ken", User: "crm", Password: "pw"})
	require.NoError(t, err)
	down, err = s.AddHook(ctx, hooks.Hook{Number: "908508850000", URL: closedURL(t) + "/hook?token=t0ken"})
	require.NoError(t, err)
	off, err := s.AddHook(ctx, hooks.Hook{Number: "908508850001", URL: closedURL(t)})
	require.NoError(t, err)
	require.NoError(t, s.SetEnabled(ctx, off.ID, false))
	return path, up, down
}

func statuses(rs []Result) map[string]Status {
	out := map[string]Status{}
	for _, r := range rs {
		out[r.Check] = r.Status
	}
	return out
}

func find(t *testing.T, rs []Result, check string) Result {
	t.Helper()
	for _, r := range rs {
		if r.Check == check {
			return r
		}
	}
	t.Fatalf("no check %q in %v", check, rs)
	return Result{}
}

// subscribe connects to the fake Asterisk as kanca run does.
func subscribe(t *testing.T, ctx context.Context, ast *aritest.Server) *websocket.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ast.URL, nil)
	req.SetBasicAuth("kanca", "kanca")
	c, _, err := websocket.Dial(ctx, "ws"+ast.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {req.Header.Get("Authorization")}}})
	require.NoError(t, err)
	return c
}

// played leaves the fake Asterisk with the channels that n frames of a
// recording leave alive, by reading them as a client would.
func played(t *testing.T, ast *aritest.Server, frames [][]byte) {
	t.Helper()
	ast.Play(frames...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := subscribe(t, ctx, ast)
	for range frames {
		_, _, err := c.Read(ctx)
		require.NoError(t, err)
	}
	c.CloseNow()
}

func load(t *testing.T, scenario string, n int) [][]byte {
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "testdata", "ari", scenario, "events.ndjson"))
	require.NoError(t, err)
	return frames[:n]
}

func config(url, password, db string) Config {
	return Config{ARI: ari.Config{URL: url, User: "kanca", Password: password, App: "kanca"}, DB: db, Timeout: 5 * time.Second}
}

func TestGoodSetupWithLinkedID(t *testing.T) {
	db, up, down := database(t)
	ast := aritest.NewServer(aritest.Options{OtherApps: []string{"kanca-doctor"}})
	t.Cleanup(ast.Close)
	played(t, ast, load(t, "s14-answered-with-channelvars", 5))
	require.NotEmpty(t, ast.LiveChannels())

	var reported []Result
	rs := Run(context.Background(), config(ast.URL, "kanca", db), func(r Result) { reported = append(reported, r) })
	assert.Equal(t, rs, reported, "each result is reported as it comes")
	upName := fmt.Sprintf("hook %d (908508850000) answers", up.ID)
	downName := fmt.Sprintf("hook %d (908508850000) answers", down.ID)
	assert.Equal(t, []string{checkReach, checkAuth, checkSubscribe, checkLinkedID, checkDB, upName, downName},
		func() (names []string) {
			for _, r := range rs {
				names = append(names, r.Check)
			}
			return names
		}(), "in order, the disabled hook left out")
	assert.Equal(t, map[string]Status{checkReach: OK, checkAuth: OK, checkSubscribe: OK, checkLinkedID: OK,
		checkDB: OK, upName: OK, downName: Fail}, statuses(rs))
	assert.Contains(t, find(t, rs, checkReach).Detail, "20.20.1")
	assert.Contains(t, find(t, rs, upName).Detail, fmt.Sprintf("HTTP 405 to HEAD; kanca hooks test %d posts a sample event", up.ID),
		"the host answers; whether it takes an event is the test's to say")
	d := find(t, rs, downName)
	assert.Contains(t, d.Fix, "firewalls")
	assert.NotContains(t, d.Detail+d.Fix, "t0ken", "a URL's query is not printed")
	assert.Equal(t, 1, Failed(rs))
	assert.Equal(t, 2, ast.Connections(), "the test's client and the doctor's subscription")
}

func TestNoChannelVarsAndNoLiveChannel(t *testing.T) {
	db, _, _ := database(t)
	ast := aritest.NewServer(aritest.Options{OtherApps: []string{"kanca-doctor"}})
	t.Cleanup(ast.Close)
	rs := Run(context.Background(), config(ast.URL, "kanca", db), nil)
	r := find(t, rs, checkLinkedID)
	assert.Equal(t, Warn, r.Status)
	assert.Contains(t, r.Detail, "can't tell")
	assert.Contains(t, r.Fix, "channelvars = CHANNEL(linkedid)")

	ast2 := aritest.NewServer(aritest.Options{OtherApps: []string{"kanca-doctor"}})
	t.Cleanup(ast2.Close)
	played(t, ast2, load(t, "s01-answered-caller-hangs-up", 5))
	require.NotEmpty(t, ast2.LiveChannels())
	r = find(t, Run(context.Background(), config(ast2.URL, "kanca", db), nil), checkLinkedID)
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Fix, "channelvars = CHANNEL(linkedid)")
}

func TestBadCredentials(t *testing.T) {
	db, _, _ := database(t)
	ast := aritest.NewServer(aritest.Options{OtherApps: []string{"kanca-doctor"}})
	t.Cleanup(ast.Close)
	rs := Run(context.Background(), config(ast.URL, "wrong", db), nil)
	assert.Equal(t, OK, find(t, rs, checkReach).Status)
	r := find(t, rs, checkAuth)
	assert.Equal(t, Fail, r.Status)
	assert.Equal(t, "check ari.conf [kanca] and KANCA_ARI_USER/KANCA_ARI_PASSWORD (or --ari-password-file)", r.Fix)
	assert.NotContains(t, r.Detail, "wrong")
	assert.Equal(t, Skip, find(t, rs, checkSubscribe).Status)
	assert.Equal(t, Skip, find(t, rs, checkLinkedID).Status)
	assert.Equal(t, OK, find(t, rs, checkDB).Status, "the database is checked all the same")
	assert.Zero(t, ast.Connections())
}

func TestServerDown(t *testing.T) {
	db, _, _ := database(t)
	rs := Run(context.Background(), config(closedURL(t), "kanca", db), nil)
	r := find(t, rs, checkReach)
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Fix, "http.conf")
	assert.Equal(t, Skip, find(t, rs, checkAuth).Status)
	assert.Equal(t, 2, Failed(rs), "Asterisk and the unreachable hook")
}

func TestNotARIAndRefusedSubscription(t *testing.T) {
	db, _, _ := database(t)
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	r := find(t, Run(context.Background(), config(web.URL, "kanca", db), nil), checkReach)
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Fix, "enabled = yes")

	ast := aritest.NewServer(aritest.Options{App: "other"})
	t.Cleanup(ast.Close)
	r = find(t, Run(context.Background(), config(ast.URL, "kanca", db), nil), checkSubscribe)
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Detail, "app must be other")
}

func TestDatabaseMissingAndNoHooks(t *testing.T) {
	ast := aritest.NewServer(aritest.Options{OtherApps: []string{"kanca-doctor"}})
	t.Cleanup(ast.Close)
	rs := Run(context.Background(), config(ast.URL, "kanca", filepath.Join(t.TempDir(), "none.db")), nil)
	r := find(t, rs, checkDB)
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Fix, "kanca hooks add")
	assert.Equal(t, Skip, find(t, rs, "hooks answer").Status)

	empty := filepath.Join(t.TempDir(), "empty.db")
	s, err := hooks.Open(empty)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	rs = Run(context.Background(), config(ast.URL, "kanca", empty), nil)
	assert.Equal(t, OK, find(t, rs, checkDB).Status)
	assert.Equal(t, Warn, find(t, rs, "hooks answer").Status)
	assert.Zero(t, Failed(rs))
}

// The doctor subscribes under its own application name: Asterisk gives an
// application's events to its newest WebSocket, so a doctor subscribing
// as kanca's would leave a running kanca silent (ApplicationReplaced).
func TestDoctorLeavesKancasSubscriptionAlone(t *testing.T) {
	db, _, _ := database(t)
	ast := aritest.NewServer(aritest.Options{OtherApps: []string{DoctorApp("kanca")}})
	t.Cleanup(ast.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := subscribe(t, ctx, ast)
	t.Cleanup(func() { c.CloseNow() })
	require.Eventually(t, ast.Connected, 10*time.Second, time.Millisecond)

	rs := Run(context.Background(), config(ast.URL, "kanca", db), nil)
	assert.Equal(t, OK, find(t, rs, checkSubscribe).Status)
	assert.Equal(t, 2, ast.Connections())

	// kanca's socket still gets the events, and no ApplicationReplaced.
	frames := load(t, "s01-answered-caller-hangs-up", 3)
	ast.Play(frames...)
	for i := range frames {
		_, data, err := c.Read(ctx)
		require.NoError(t, err)
		assert.JSONEq(t, string(frames[i]), string(data))
	}
}
