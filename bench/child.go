package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
)

// The child phases run a kanca binary (Options.Binary, default this one)
// as its own process, `kanca run` against the fake Asterisk and the local
// receiver, so that its CPU is its own (the process's rusage, the
// simulator and the receiver aside) and so that another release's binary
// can be measured by the same harness.

// CPUStats is the --cpu phase: kanca's CPU per call beside a bare decode
// of the same frames.
type CPUStats struct {
	Binary     string
	Calls      int
	Frames     int
	Deliveries int64
	CPU        time.Duration // the child's user + system time, start to exit
	PerCall    time.Duration
	// DecodePerCall is ari.Decode of every frame, each decoded in full,
	// in this process: what decoding the frames alone costs.
	DecodePerCall time.Duration
	// ReadPerCall is a process of its own that reads the same frames from
	// the same fake Asterisk at the same pace and discards them
	// (ReadFrames): what waking for each frame alone costs. Zero when
	// it could not be measured.
	ReadPerCall time.Duration
	// Commits is how many outbox transactions the child made, from its
	// "kanca stopped" log line; 0 when it does not say (an older release).
	Commits int64
	// MaxRSS is the child's peak resident memory, in bytes.
	MaxRSS int64
	// System is the kernel's share of CPU; Switches the times the child
	// gave up the CPU waiting (voluntary context switches): how often it
	// woke.
	System   time.Duration
	Switches int64
}

// BurstStats is the --slow-burst phase: a burst of calls to hooks whose
// receiver answers every request after SlowDelay.
type BurstStats struct {
	Binary     string
	Calls      int
	Deliveries int64
	Delay      time.Duration
	// Drained is from the burst's last hangup frame to the last delivery.
	Drained  time.Duration
	P50, P99 time.Duration // hangup frame to call_hangup POST
}

// child is a kanca process following the rig's fake Asterisk.
type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

func (o *Options) binary() (string, error) {
	if o.Binary != "" {
		return o.Binary, nil
	}
	return os.Executable()
}

// childRig is the fake Asterisk, the receiver and a store for the child,
// with one hook per public number pointing at path.
func childRig(ctx context.Context, o Options, tps []*template, path string, onSend func(int)) (*rig, string, error) {
	dir, err := os.MkdirTemp("", "kanca-bench-")
	if err != nil {
		return nil, "", err
	}
	r := &rig{dir: dir}
	if r.recv, err = startReceiver(o.SlowDelay, 0); err != nil {
		r.close()
		return nil, "", err
	}
	bin, err := o.binary()
	if err != nil {
		r.close()
		return nil, "", err
	}
	db := filepath.Join(dir, "kanca.db")
	for _, n := range numbers(tps) {
		out, err := exec.CommandContext(ctx, bin, "hooks", "add", "--db", db, "--number", n,
			"--url", r.recv.url+path, "--timeout", (o.SlowDelay + 5*time.Second).String()).CombinedOutput()
		if err != nil {
			r.close()
			return nil, "", fmt.Errorf("%s hooks add: %v: %s", bin, err, out)
		}
		r.hooks++
	}
	r.ast = aritest.NewServer(aritest.Options{OnSend: onSend, ForgetSent: true})
	return r, db, nil
}

func startChild(ctx context.Context, o Options, r *rig, db string) (*child, error) {
	bin, err := o.binary()
	if err != nil {
		return nil, err
	}
	c := &child{done: make(chan error, 1)}
	args := []string{"run", "--db", db, "--pbx", "asterisk", "--ari-url", r.ast.URL,
		"--ari-user", "kanca", "--log-level", "info", "--log-format", "json"}
	if o.ChildProfile != "" {
		args = append(args, "--cpuprofile", o.ChildProfile)
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), "KANCA_ARI_PASSWORD=kanca")
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	deadline := time.After(o.Timeout)
	for r.ast.Listings() == 0 {
		select {
		case <-r.ast.Changed():
		case err := <-c.done:
			return nil, fmt.Errorf("%s run exited before connecting: %v: %s", bin, err, c.stderr.String())
		case <-deadline:
			c.stop()
			return nil, fmt.Errorf("%s run did not connect to the fake Asterisk", bin)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		}
	}
	return c, nil
}

// stop ends the child with SIGTERM, as systemd does; its rusage is then
// usage's.
func (c *child) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	var err error
	select {
	case err = <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		err = <-c.done
	}
	if c.cmd.ProcessState == nil {
		return errors.New("kanca run did not exit")
	}
	if err != nil {
		return fmt.Errorf("kanca run: %v: %s", err, c.stderr.String())
	}
	return nil
}

// usage is the exited child's rusage; zero when unknown.
func (c *child) usage() syscall.Rusage {
	if c.cmd.ProcessState != nil {
		if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return *ru
		}
	}
	return syscall.Rusage{}
}

// commits reads the outbox transactions from the stopped child's last
// log line; 0 when it does not log them.
func (c *child) commits() int64 {
	for line := range bytes.Lines(c.stderr.Bytes()) {
		var l struct {
			Msg     string `json:"msg"`
			Commits int64  `json:"outbox_commits"`
		}
		if json.Unmarshal(line, &l) == nil && l.Msg == "kanca stopped" {
			return l.Commits
		}
	}
	return 0
}

// waitFor waits until n deliveries reached the receiver (fast or slow).
func waitDeliveries(ctx context.Context, o Options, r *rig, c *child, n int64, slow bool, sendErr <-chan error) error {
	got := func() int64 {
		if slow {
			return r.recv.slow.Load()
		}
		return r.recv.fast.Load()
	}
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	sent := false
	tick := time.NewTicker(100 * time.Millisecond) // the slow counter does not signal
	defer tick.Stop()
	for got() < n || !sent {
		select {
		case <-r.recv.arrived:
		case <-tick.C:
		case err := <-sendErr:
			if err != nil {
				return err
			}
			sent = true
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("kanca run exited: %v: %s", err, c.stderr.String())
		case <-deadline.C:
			return fmt.Errorf("only %d of %d deliveries arrived in time", got(), n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// childRun is one child phase: calls sent at rate to hooks at path
// until every delivery arrived, then the child stopped.
type childRun struct {
	calls      int
	deliveries int64
	tr         *tracking
	frames     [][]byte       // every frame sent, when keep
	end        time.Time      // when the last delivery arrived
	commits    int64          // outbox transactions, as the child logged them
	usage      syscall.Rusage // the exited child's
}

func runChild(ctx context.Context, o Options, tps []*template, n int, rate float64, path string, keep bool) (*childRun, error) {
	calls := plan(tps, n)
	cr := &childRun{calls: countCalls(calls)}
	for _, tp := range calls {
		cr.deliveries += int64(tp.total)
	}
	cr.tr = newTracking(cr.calls)
	r, db, err := childRig(ctx, o, tps, path, cr.tr.onSend)
	if err != nil {
		return cr, err
	}
	defer r.close()
	r.recv.onSlowHangup = cr.tr.onHangup
	c, err := startChild(ctx, o, r, db)
	if err != nil {
		return cr, err
	}
	p := &producer{ast: r.ast, tr: cr.tr, base: time.Now(), rate: rate, speed: o.Speedup,
		until: func(c *clone) int { return len(c.tp.frames) }}
	if keep {
		p.keep = &cr.frames
	}
	sendErr := make(chan error, 1)
	go func() {
		_, err := p.send(ctx, calls)
		sendErr <- err
	}()
	waitErr := waitDeliveries(ctx, o, r, c, cr.deliveries, path == "/slow", sendErr)
	cr.end = time.Now()
	stopErr := c.stop()
	cr.commits = c.commits()
	cr.usage = c.usage()
	if waitErr != nil {
		return cr, waitErr
	}
	return cr, stopErr
}

// cpuPhase sends o.Calls calls through a kanca child and reads its CPU.
func cpuPhase(ctx context.Context, o Options, tps []*template) (CPUStats, error) {
	st := CPUStats{}
	st.Binary, _ = o.binary()
	cr, err := runChild(ctx, o, tps, o.Calls, o.Rate, "/fast", true)
	st.Calls, st.Deliveries = cr.calls, cr.deliveries
	if err != nil {
		return st, err
	}
	st.Frames = len(cr.frames)
	st.System = time.Duration(cr.usage.Stime.Nano())
	st.CPU = time.Duration(cr.usage.Utime.Nano()) + st.System
	st.Commits = cr.commits
	st.MaxRSS = cr.usage.Maxrss * 1024 // Linux reports KiB
	st.Switches = cr.usage.Nvcsw
	st.PerCall = st.CPU / time.Duration(st.Calls)
	before := processCPU()
	for _, f := range cr.frames {
		_, _, _ = ari.Decode(f)
	}
	st.DecodePerCall = (processCPU() - before) / time.Duration(st.Calls)
	read, err := readPhase(ctx, o, tps)
	if err != nil {
		return st, fmt.Errorf("the bare reader: %w", err)
	}
	st.ReadPerCall = read / time.Duration(st.Calls)
	return st, nil
}

// readPhase plays the calls of a --cpu run again, at its pace, to this
// binary run as a bare reader of the events socket (kanca bench
// --read-ari), and returns that process's CPU.
func readPhase(ctx context.Context, o Options, tps []*template) (time.Duration, error) {
	self := o.Reader
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return 0, err
		}
	}
	calls := plan(tps, o.Calls)
	tr := newTracking(countCalls(calls))
	ast := aritest.NewServer(aritest.Options{OnSend: tr.onSend, ForgetSent: true})
	defer ast.Close()
	c := &child{cmd: exec.CommandContext(ctx, self, "bench", "--read-ari", ast.URL), done: make(chan error, 1)}
	c.cmd.Env = append(os.Environ(), "KANCA_ARI_PASSWORD=kanca")
	var stdout bytes.Buffer
	c.cmd.Stdout, c.cmd.Stderr = &stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		return 0, err
	}
	go func() { c.done <- c.cmd.Wait() }()
	deadline := time.After(o.Timeout)
	for !ast.Connected() {
		select {
		case <-ast.Changed():
		case err := <-c.done:
			return 0, fmt.Errorf("exited before connecting: %v: %s", err, c.stderr.String())
		case <-deadline:
			_ = c.cmd.Process.Kill()
			return 0, errors.New("did not connect to the fake Asterisk")
		}
	}
	p := &producer{ast: ast, tr: tr, base: time.Now(), rate: o.Rate, speed: o.Speedup,
		until: func(c *clone) int { return len(c.tp.frames) }}
	var sent [][]byte
	p.keep = &sent
	if _, err := p.send(ctx, calls); err != nil {
		_ = c.cmd.Process.Kill()
		return 0, err
	}
	for ast.SentToCurrent() < len(sent) {
		select {
		case <-ast.Changed():
		case <-time.After(10 * time.Millisecond):
		case err := <-c.done:
			return 0, fmt.Errorf("exited before the last frame: %v: %s", err, c.stderr.String())
		}
	}
	ast.Close() // the reader's socket closes: it exits
	if err := <-c.done; err != nil {
		return 0, fmt.Errorf("%v: %s", err, c.stderr.String())
	}
	if n, err := strconv.Atoi(strings.TrimSpace(stdout.String())); err != nil || n != len(sent) {
		return 0, fmt.Errorf("read %q frames of %d: %s", strings.TrimSpace(stdout.String()), len(sent), c.stderr.String())
	}
	ru := c.usage()
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// ReadFrames reads the events socket of the Asterisk at ariURL (as kanca
// run's --ari-url) as user, as kanca's own application, and discards
// every frame until the socket closes: the bare cost of reading what
// kanca reads (bench --cpu's baseline). It returns how many it read.
func ReadFrames(ctx context.Context, ariURL, user, password string) (int, error) {
	u, err := url.Parse(ariURL)
	if err != nil {
		return 0, errors.New("--read-ari: URL does not parse")
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ari/events"
	u.RawQuery = url.Values{"app": {"kanca"}, "subscribeAll": {"true"}}.Encode()
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPHeader: http.Header{
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}}})
	if err != nil {
		return 0, fmt.Errorf("--read-ari: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(-1)
	n := 0
	for {
		_, r, err := conn.Reader(ctx)
		if err != nil {
			// The server closing the socket is the end of the frames.
			return n, nil
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return n, nil
		}
		n++
	}
}

// burstPhase sends o.BurstCalls calls at once to hooks answering after
// o.SlowDelay and times how long the receiver takes to get them all.
func burstPhase(ctx context.Context, o Options, tps []*template) (BurstStats, error) {
	st := BurstStats{Delay: o.SlowDelay}
	st.Binary, _ = o.binary()
	cr, err := runChild(ctx, o, tps, o.BurstCalls, 0, "/slow", false)
	st.Calls, st.Deliveries = cr.calls, cr.deliveries
	if err != nil {
		return st, err
	}
	cr.tr.mu.Lock()
	lat := slices.Clone(cr.tr.lat)
	st.Drained = cr.end.Sub(cr.tr.lastHang)
	cr.tr.mu.Unlock()
	st.P50, _, st.P99, _ = percentiles(lat)
	return st, nil
}

// processCPU is this process's user + system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
