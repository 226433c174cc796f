// Package runcmd is `kanca run`: the daemon.
package runcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cmd/kanca/cpuprofile"
	"github.com/kanca/kanca/cmd/kanca/logflags"
	"github.com/kanca/kanca/cmd/kanca/natsflags"
	"github.com/kanca/kanca/cmd/kanca/netflags"
	"github.com/kanca/kanca/cmd/kanca/pbxflags"
	"github.com/kanca/kanca/cmd/kanca/trackerflags"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/httpapi"
	"github.com/kanca/kanca/pipeline"
	"github.com/kanca/kanca/runlock"
	"github.com/kanca/kanca/status"
	"github.com/kanca/kanca/version"
)

// New returns the run command; db is the root's --db.
func New(db *string) *cobra.Command {
	var (
		tf        trackerflags.Flags
		nf        netflags.Flags
		lf        logflags.Flags
		pf        pbxflags.Flags
		listen    string
		publicURL string
		deadKeep  time.Duration
		// profile is for the benchmarks that run kanca as a process.
		profile string
		cf      callFlags
		records string
		nats    natsflags.Flags
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Attach to Asterisk or FreeSWITCH and deliver call webhooks (the daemon)",
		Long: `run connects to the PBX, follows every call, stores each call event for
each matching hook in the database, and delivers them with retries. Stop it
with SIGTERM or Ctrl-C: it stops taking PBX events, finishes the requests
in flight and leaves the rest queued for the next start.

--pbx asterisk (the default) connects to Asterisk's ARI, subscribed to
every channel (--ari-* flags); the ARI password is read from
KANCA_ARI_PASSWORD or --ari-password-file. --pbx freeswitch connects to
FreeSWITCH's event socket, mod_event_socket (--esl-addr, default
127.0.0.1:8021); its password (event_socket.conf.xml) is read from
KANCA_ESL_PASSWORD or --esl-password-file. Passwords never come from the
command line. After every reconnect kanca lists the PBX's channels, so
calls that ended while it was away still get their call_hangup.

--pbx-records points kanca at the PBX's own records of its calls, so that
a gap (a restart, a lost connection) is closed from them rather than
estimated: calls that ended in the gap get their true answer and end
times, hangup side and cause, and calls that began and ended in it are
sent late, marked "recovered": true in the CDR. It takes a MySQL/MariaDB
DSN holding Asterisk's cel and cdr tables (FreePBX's asteriskcdrdb:
mysql://user:password@host:3306/asteriskcdrdb, ?loc=Europe/Istanbul when
Asterisk writes another zone's time), the same tables in PostgreSQL
(cel_pgsql, cdr_pgsql: postgres://user:password@host:5432/asteriskcdrdb),
an Asterisk cel_custom CSV file
(its cdr_custom CSV beside it as cdr.csv or Master.csv), or a directory
holding them; with FreeSWITCH, the directory mod_json_cdr or mod_xml_cdr
writes its files to (log-dir), or FusionPBX's database
(postgres://user:password@host:5432/fusionpbx, its v_xml_cdr table). Without it a call that ended unseen is marked
"reconciled": true and names its estimated fields.

With --listen, run also serves over HTTP (no authentication: bind it to
loopback or a management network):

  /metrics             Prometheus metrics
  /healthz             200 when the PBX is connected and the database answers, else 503
  /status              the PBX connection, live calls, each hook's queue (kanca status)
  /calls/{uuid}        the stored call_hangup of an ended call
  /deliveries          ?hook=&state=&call=&limit=, newest first
  /deliveries/{id}     one delivery with its attempts

and call_hangup and missing_call carry cdr_url, --public-url + /calls/{uuid}.

One kanca run per database: a second refuses to start, naming the process
that holds it (a lock file beside the database; a killed kanca leaves no
lock behind). kanca run warns at start when no hook is enabled.

With --dial as well, kanca places calls on request (keys: kanca keys add):

  /webhook/receive     Alertalk's webhook: phone_number, error_message read aloud
  /automatic-calls     Bulutfon's automatic calls (POST) and their results (GET)
  /call_and_bridge     Bulutfon's click-to-call
  /alertmanager        Prometheus Alertmanager: a call for firing alerts
  /call-requests       kanca's own JSON API
  /speech/{id}.wav     the rendered message the PBX plays

The calls' webhooks carry autodial, additional_data and callback_url; the
audit trail is kanca calls list.

With --nats (KANCA_NATS_URL), run is a listener beside one PBX of many:
it keeps each call event in its database as usual, so the PBX is never
slowed and nothing is lost while NATS is unreachable, and forwards them
in order to the cluster's stream; kanca deliver workers send them to the
hooks kept in the cluster (kanca hooks --nats). Its own database then
holds no hooks and sends nothing itself.`,
		Example: `  export KANCA_ARI_PASSWORD=secret
  kanca run --ari-url http://127.0.0.1:8088 --ari-user kanca --db /var/lib/kanca/kanca.db

  # FreeSWITCH: the event socket on another host, its password in a file
  kanca run --pbx freeswitch --esl-addr 10.0.0.2:8021 --esl-password-file /etc/kanca/esl.pass

  # JSON logs for a log shipper, ISO times in Istanbul time
  kanca run --log-format json --tz Europe/Istanbul

  # metrics and the API on the management address; receivers get cdr_url
  kanca run --listen 10.0.0.5:9090 --public-url http://kanca.example.lan:9090

  # also place calls on request through the carrier trunk
  kanca run --listen 10.0.0.5:9090 --dial 'PJSIP/{number}@carrier' --tz Europe/Istanbul

  # two trunks, numbers from 90533 on the second, 8 calls up on each
  kanca run --listen 10.0.0.5:9090 --dial 'PJSIP/{number}@carrier' --dial '90533=PJSIP/{number}@second' --dial-concurrency 8

  # a listener of many: events go to the NATS cluster, workers deliver them
  kanca run --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 --nats-creds /etc/kanca/nats.creds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			// The first line says which kanca this is: a log sent with a
			// bug report names its build.
			v := version.Get()
			log.Info("kanca starting", "version", v.Version, "revision", v.Revision, "go", v.Go)
			tcfg, err := tf.Tracker()
			if err != nil {
				return err
			}
			fo, err := tf.Format()
			if err != nil {
				return err
			}
			netPolicy, err := nf.Policy(log)
			if err != nil {
				return err
			}
			if deadKeep < 0 {
				return fmt.Errorf("--dead-retention %s: must not be negative (0 keeps them forever)", deadKeep)
			}
			if publicURL != "" && listen == "" {
				return errors.New("--public-url needs --listen")
			}
			if len(cf.dial) > 0 && listen == "" {
				return errors.New("--dial needs --listen: requests for calls come in over HTTP, and the PBX fetches the speech there")
			}
			if publicURL != "" {
				if err := checkPublicURL(publicURL); err != nil {
					return err
				}
			}
			var bk books.Books
			if records != "" {
				if bk, err = books.Open(records); err != nil {
					return fmt.Errorf("--pbx-records: %w", err)
				}
				defer bk.Close()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The pipeline is built after the source; the gap waits for it.
			var p *pipeline.Pipeline
			var onGap func(follow.Gap)
			if bk != nil {
				onGap = func(g follow.Gap) { p.Gap(ctx, g) }
			}
			src, err := newSource(&pf, tcfg.ReadsVariable, tcfg.DIDVariables, log, onGap)
			if err != nil {
				return err
			}
			store, err := hooks.Open(*db)
			if err != nil {
				return err
			}
			defer store.Close()
			// Two daemons on one database would both send every call.
			lock, err := runlock.Acquire(store.Path())
			if err != nil {
				return err
			}
			defer lock.Release()
			if nats.Set() && len(cf.dial) > 0 {
				return errors.New("--dial with --nats is not supported yet: a listener's calls are delivered by the cluster's workers")
			}
			if !nats.Set() {
				if n, err := store.EnabledHooks(cmd.Context()); err != nil {
					return err
				} else if n == 0 {
					log.Warn(status.NoEnabledHook, "db", store.Path())
				}
			}

			enc := hooks.Encoding{Location: fo.Location, NumbersAsStrings: fo.NumbersAsStrings}
			dopts := hooks.DispatchOptions{Logger: log, NetPolicy: netPolicy, DeadRetention: deadKeep}
			if deadKeep == 0 {
				dopts.DeadRetention = -1 // kept until retried
			}
			var ln net.Listener
			var attempts *httpapi.Attempts
			base := ""
			if listen != "" {
				ln, err = net.Listen("tcp", listen)
				if err != nil {
					return fmt.Errorf("--listen: %w", err)
				}
				defer ln.Close()
				base = strings.TrimSuffix(publicURL, "/")
				if base == "" {
					base = "http://" + advertised(listen, ln.Addr())
				}
				enc.CDRURL = func(uuid string) string { return base + "/calls/" + url.PathEscape(uuid) }
				attempts = httpapi.NewAttempts()
				dopts.OnAttempt = attempts.Observe
			}
			disp := hooks.NewDispatcher(store, dopts)
			var deliver pipeline.Dispatcher = disp
			if nats.Set() {
				// A listener: the cluster's workers deliver, with the
				// hooks kept there.
				conn, err := nats.Connect("kanca run", log)
				if err != nil {
					return err
				}
				defer conn.Close()
				deliver = &cluster.Forwarder{Store: store, Conn: conn, Logger: log}
				if conn.NC.IsConnected() {
					log.Info("forwarding call events to NATS", "server", conn.NC.ConnectedUrlRedacted())
				} else {
					log.Warn("no NATS server answers yet: call events wait in the local store until one does; check --nats (KANCA_NATS_URL)")
				}
			}
			outbox := hooks.NewOutbox(store, hooks.OutboxOptions{Encoding: enc, Forward: nats.Set()})
			p = &pipeline.Pipeline{
				Source:     src.Source,
				Tracker:    cdr.NewTracker(tcfg),
				Outbox:     outbox,
				Dispatcher: deliver,
				Journal:    store,
				Books:      bk,
				Logger:     log,
			}
			stopProfile, err := cpuprofile.Start(profile)
			if err != nil {
				return err
			}
			defer stopProfile()
			if src.ari != nil {
				p.PBXID = func(ctx context.Context) (string, error) {
					info, err := src.ari.Client().Info(ctx)
					return info.EntityID, err
				}
			}

			served := make(chan error, 1)
			var srv *http.Server
			runnerDone := make(chan error, 1)
			runnerDone <- nil
			if ln != nil {
				mux := http.NewServeMux()
				mux.Handle("/", httpapi.Handler(src.api(httpapi.Config{Store: store, Pipeline: p, Dispatcher: disp, Cluster: nats.Set(),
					Attempts: attempts, Logger: log})))
				calls, err := cf.setup(*db, store, src, p, mux, base, tcfg.CountryCode, fo.Location, log)
				if err != nil {
					return err
				}
				if calls != nil {
					defer calls.store.Close()
					<-runnerDone
					go func() { runnerDone <- calls.runner.Run(ctx) }()
					log.Info("placing calls on request", "dial", cf.dial, "calls_db", autodial.PathFor(*db))
				}
				srv = &http.Server{
					Handler:           mux,
					ReadHeaderTimeout: 10 * time.Second,
					ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
				}
				go func() {
					err := srv.Serve(ln)
					if !errors.Is(err, http.ErrServerClosed) {
						log.Error("HTTP server failed; stopping", "err", err)
						stop()
					}
					served <- err
				}()
				log.Info("serving metrics and API", "addr", ln.Addr().String())
			}
			log.Info("kanca running", append(src.logArgs, "db", store.Path())...)
			err = p.Run(ctx)
			stop()
			if rerr := <-runnerDone; rerr != nil {
				log.Error("calls on request stopped", "err", rerr)
			}
			st := p.Stats()
			log.Info("kanca stopped", "pbx_events", st.Inputs, "call_events", st.Events, "open_calls", st.LiveCalls,
				"outbox_commits", outbox.Stats().Batches)
			if srv != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(sctx)
				cancel()
				if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
					return fmt.Errorf("HTTP server: %w", serr)
				}
			}
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	fs := cmd.Flags()
	pf.Register(fs)
	fs.StringVar(&listen, "listen", os.Getenv("KANCA_LISTEN"), "serve /metrics, /healthz and the read-only API on this address, e.g. 127.0.0.1:9090 (default off) [KANCA_LISTEN]")
	fs.StringVar(&records, "pbx-records", os.Getenv("KANCA_PBX_RECORDS"), "the PBX's own call records, to close a gap from: mysql://user:password@host:3306/asteriskcdrdb or postgres://... (Asterisk CEL and CDR tables, or FusionPBX's v_xml_cdr), an Asterisk CEL CSV file or its directory, or FreeSWITCH's mod_json_cdr or mod_xml_cdr directory (default off) [KANCA_PBX_RECORDS]")
	fs.StringVar(&publicURL, "public-url", os.Getenv("KANCA_PUBLIC_URL"), "base URL receivers reach --listen at, for cdr_url (default http://ADDR) [KANCA_PUBLIC_URL]")
	deadKeep = hooks.DefaultDeadRetention
	fs.Var((*days)(&deadKeep), "dead-retention",
		"how long dead deliveries, and events held for a disabled hook, are kept: 30d, 720h (0: until retried or released)")
	fs.StringVar(&profile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the run to this file, until kanca stops")
	tf.Register(fs)
	lf.Register(fs)
	nf.Register(fs)
	cf.register(fs)
	nats.Register(fs)
	return cmd
}

func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: want http(s)://host[:port][/prefix]", raw)
	}
	return nil
}

// advertised is host:port for cdr_url: the host given to --listen (the
// machine's name when that is empty or a wildcard) and the port bound.
func advertised(listen string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		} else {
			host = "localhost"
		}
	}
	port := ""
	if tcp, ok := bound.(*net.TCPAddr); ok {
		port = fmt.Sprint(tcp.Port)
	} else if _, p, err := net.SplitHostPort(bound.String()); err == nil {
		port = p
	}
	return net.JoinHostPort(host, port)
}
