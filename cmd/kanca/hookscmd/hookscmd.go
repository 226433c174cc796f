// Package hookscmd is `kanca hooks`: the admin's view of the webhooks bound
// to PBX numbers. It parses flags and calls package hooks; nothing more.
package hookscmd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cmd/kanca/storecli"
	"github.com/kanca/kanca/cmd/kanca/table"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/templates"
)

// New returns the `hooks` command; db points at the root's --db value.
func New(path *string) *cobra.Command {
	var asJSON bool
	db := &storecli.Target{DB: path}
	cmd := &cobra.Command{
		Use:   "hooks",
		Short: "Manage the webhooks bound to PBX numbers",
		Long: `Manage the webhooks bound to PBX numbers.

A hook receives, as HTTP POSTs, the events of the calls of one PBX number
that it subscribes to, as JSON or form data. Delivery is at least once and
in order per call; a request is a success only on a 2xx.

Failed deliveries are retried with exponential backoff:
  ` + hooks.DefaultRetryPolicy.String() + `.
A 410 Gone disables the hook. Every other failure (3xx, 4xx, 5xx, timeouts,
refused connections, TLS errors) is retried; after the last attempt the
delivery is dead and can be replayed with ` + "`kanca deliveries retry`" + `.`,
		Example: `  kanca hooks add --number 908508850000 --url https://crm.example/bulutfon
  kanca hooks list
  kanca hooks test 1 --event call_hangup`,
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	db.NATS.Register(cmd.PersistentFlags())
	out := func(c *cobra.Command) printer { return printer{table.Printer{W: c.OutOrStdout(), JSON: asJSON}} }
	cmd.AddCommand(addCmd(db, out), listCmd(db, out), showCmd(db, out), updateCmd(db, out),
		removeCmd(db), enableCmd(db), disableCmd(db), testCmd(db, out),
		importCmd(db), exportCmd(db))
	return cmd
}

// parseID names the listing that has the ids, since a hook is known to
// the admin by its number and URL, not by its id.
func parseID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("invalid hook id %q: must be a positive number (see kanca hooks list)", arg)
	}
	return id, nil
}

// onHook is the body of a command on one hook: its ID argument parsed,
// the database open.
func onHook(db *storecli.Target, f func(ctx context.Context, cmd *cobra.Command, s hooks.Catalog, id int64) error) func(*cobra.Command, []string) error {
	return storecli.RunE(func(cmd *cobra.Command, args []string) error {
		id, err := parseID(args[0])
		if err != nil {
			return err
		}
		return db.WithHooks(false, func(ctx context.Context, s hooks.Catalog) error {
			return f(ctx, cmd, s, id)
		})
	})
}

// hookFlags are the flags of add and update.
type hookFlags struct {
	number, url, format, user  string
	events                     []string
	password, passwordEnv      string
	passwordFile               string
	secret, secretEnv          string
	secretFile                 string
	domainID, accountID        int64
	timeout                    time.Duration
	maxInFlight                int
	insecure                   bool
	request                    requestFlags
	warn                       io.Writer
	changed                    func(string) bool
	passwordGiven, secretGiven bool
}

func (f *hookFlags) register(cmd *cobra.Command, adding bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.number, "number", "", "the PBX number in international form (908508850000; a leading + and spaces are dropped)")
	fl.StringVar(&f.url, "url", "", "where to POST: an absolute http or https URL")
	events := "comma-separated events (any spelling Bulutfon used; the hook receives the one given)"
	if adding {
		events += "; default: all seven"
	}
	fl.StringSliceVar(&f.events, "events", nil, events)
	fl.StringVar(&f.format, "format", "json", "body format: json or form (x-www-form-urlencoded)")
	fl.StringVar(&f.user, "user", "", "HTTP Basic user")
	fl.StringVar(&f.passwordEnv, "password-env", "", "read the HTTP Basic password from this environment variable")
	fl.StringVar(&f.passwordFile, "password-file", "", "read the HTTP Basic password from this file")
	fl.StringVar(&f.password, "password", "", "the HTTP Basic password (discouraged: visible in the process list)")
	fl.StringVar(&f.secretEnv, "secret-env", "", "read the signing secret from this environment variable")
	fl.StringVar(&f.secretFile, "secret-file", "", "read the signing secret from this file")
	fl.StringVar(&f.secret, "secret", "", "the Standard Webhooks signing secret, whsec_ + base64 or any string (discouraged: visible in the process list)")
	fl.Int64Var(&f.domainID, "domain-id", 0, "domain_id sent in every body (0: none)")
	fl.Int64Var(&f.accountID, "account-id", 0, "account_id sent in every body (0: none)")
	fl.DurationVar(&f.timeout, "timeout", hooks.DefaultTimeout, "how long one request may take")
	fl.IntVar(&f.maxInFlight, "max-in-flight", hooks.DefaultMaxInFlight, fmt.Sprintf(
		"most requests open to the hook at once, 1 to %d: kanca starts at %d, adds one per answer while calls wait, "+
			"halves on a failure (not below %d); a call's events still go one after another",
		hooks.MaxMaxInFlight, hooks.StartInFlight, hooks.MinInFlight))
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "do not verify the receiver's TLS certificate")
	f.request.register(cmd)
	cmd.MarkFlagsMutuallyExclusive("password", "password-env", "password-file")
	cmd.MarkFlagsMutuallyExclusive("secret", "secret-env", "secret-file")
	f.changed = fl.Changed
}

// credential reads a credential from whichever of its three flags was given.
func (f *hookFlags) credential(what, direct, directFlag, env, envFlag, file, fileFlag string) (string, bool, error) {
	switch {
	case f.changed(envFlag):
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", false, fmt.Errorf("--%s: environment variable %s is not set", envFlag, env)
		}
		return v, true, nil
	case f.changed(fileFlag):
		b, err := os.ReadFile(file)
		if err != nil {
			return "", false, fmt.Errorf("--%s: read %s: %w", fileFlag, what, err)
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	case f.changed(directFlag):
		if direct != "" {
			fmt.Fprintf(f.warn, "warning: --%s is visible to other users of this machine; prefer --%s or --%s\n", directFlag, envFlag, fileFlag)
		}
		return direct, true, nil
	}
	return "", false, nil
}

func (f *hookFlags) readCredentials(cmd *cobra.Command) error {
	f.warn = cmd.ErrOrStderr()
	var err error
	if f.password, f.passwordGiven, err = f.credential("password", f.password, "password", f.passwordEnv, "password-env", f.passwordFile, "password-file"); err != nil {
		return err
	}
	f.secret, f.secretGiven, err = f.credential("secret", f.secret, "secret", f.secretEnv, "secret-env", f.secretFile, "secret-file")
	return err
}

const credentialExample = `  # credentials are read from the environment or a file, so they stay out of
  # the shell history and the process list
  CRM_PASS=... kanca hooks add --number 908508850000 --url https://crm.example/bf \
    --user kanca --password-env CRM_PASS --secret-file crm.secret`

func addCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	var f hookFlags
	cmd := &cobra.Command{
		Use:   "add",
		Short: "Bind a new hook to a PBX number",
		Long: `Bind a new hook to a PBX number and print it with its id, which the other
hooks commands take.

--number is the public number, in international form (908508850000;
+90 850 885 00 00 is taken as that): the hook receives the events of the
calls that arrive on it (inbound) or are presented with it as caller id
(outbound). --url is where
each event is POSTed. It receives the events that happen after it is
added, not those of past calls; a number may have several hooks.

--events picks some of the seven (default: all), in either spelling
Bulutfon used; the hook receives the spelling it asked for. --format json
sends application/json; --format form sends PHP bracket-notation form data,
so that a receiver's $_POST equals json_decode($body, true).

--method GET sends the event's fields as the query string instead (nested
as in the form format); --method PUT sends the body with PUT. --preset
makes the request a chat or notification app reads (slack, mattermost,
teams, discord, telegram, echobell, alertalk), its message in --lang tr or
en; --url-template, --body-template and --header-template make it from
your own Go templates ('kanca hooks show --preset NAME' prints a preset's,
to start from). Templates are checked against a sample of every event
the hook asks for; see README "Templates and presets".

--user with --password-env or --password-file adds HTTP Basic auth;
--secret-env or --secret-file adds a Standard Webhooks signature
(webhook-id, webhook-timestamp, webhook-signature). Credentials are stored
in the database and masked in every listing.

The database file is created if it does not exist yet (its directory must
exist); the command says which file it wrote and which events the hook
gets. A receiver written for the first Bulutfon revision (such as its PHP
HipChat example, which takes every event but call_init and call_hangup
for a fax) wants --events call_init,call_hangup,fax_init.`,
		Example: `  kanca hooks add --number 908508850000 --url https://crm.example/bulutfon
  kanca hooks add --number 908508850000 --url http://10.0.0.5/hook.php --format form \
    --events call_init,incoming_call_extension,call_hangup
  kanca hooks add --number 908508850000 --preset slack --lang en \
    --url https://hooks.slack.com/services/T000/B000/XXXX --events call_init,missing_call
  kanca hooks add --number 908508850000 --preset telegram --param chat_id=-1001234567890 \
    --url https://api.telegram.org/bot123:ABC/sendMessage --tz Europe/Istanbul
  kanca hooks add --number 908508850000 --method GET --url https://crm.example/bf.php
` + credentialExample,
		Args: cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			if err := f.readCredentials(cmd); err != nil {
				return err
			}
			h := hooks.Hook{
				Number: f.number, URL: f.url, Events: f.events, Format: formats.Format(f.format),
				User: f.user, Password: f.password, Secret: f.secret,
				DomainID: nonZero(f.domainID), AccountID: nonZero(f.accountID),
				Timeout: f.timeout, InsecureSkipVerify: f.insecure, MaxInFlight: f.maxInFlight,
			}
			if err := f.request.apply(&h); err != nil {
				return err
			}
			return db.WithHooks(true, func(ctx context.Context, s hooks.Catalog) error {
				h, err := s.AddHook(ctx, h)
				if err != nil {
					return err
				}
				warnRefused(ctx, cmd.ErrOrStderr(), h)
				warnTwins(ctx, cmd.ErrOrStderr(), s, h)
				if err := out(cmd).hook(h); err != nil {
					return err
				}
				// On standard error, so that --json output stays JSON.
				fmt.Fprintf(cmd.ErrOrStderr(), "hook %d stored in %s; %s\n", h.ID, s.Where(), db.Users())
				fmt.Fprintf(cmd.ErrOrStderr(), "it gets %s\n", strings.Join(h.Events, ", "))
				if !f.changed("events") && h.Preset == "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "a receiver written for the first Bulutfon revision (it takes every other event for a fax) wants --events call_init,call_hangup,fax_init")
				}
				return nil
			})
		}),
	}
	f.register(cmd, true)
	return cmd
}

func nonZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func updateCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	var f hookFlags
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a hook: only the flags given change",
		Long: `Change a hook: only the flags given change, and the result is checked as
'kanca hooks add' checks a new hook. An empty --user, --password or
--secret removes it; --domain-id 0 or --account-id 0 stops sending that id.

A new URL, credentials, secret or timeout apply to the deliveries already
queued too. A new number, events, format or ids apply to the events that
happen from then on: queued deliveries keep the body they were stored with.
A new method, preset or templates apply to queued deliveries too (they are
rendered when sent), except that a delivery stored as form data before the
hook had templates cannot be rendered and fails. --preset "" drops a
preset; --url-template "" or --header-template NAME= drops that template;
--param NAME= drops a param.`,
		Example: `  kanca hooks update 1 --url https://crm.example/v2/bulutfon
  kanca hooks update 1 --events call_hangup,missing_call --timeout 30s
  kanca hooks update 1 --user "" --password ""   # drop Basic auth
  kanca hooks update 1 --domain-id 0             # stop sending domain_id
  kanca hooks update 2 --lang en --param chat_id=-100987`,
		Args: cobra.ExactArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			if err := f.readCredentials(cmd); err != nil {
				return err
			}
			var u hooks.HookUpdate
			str := func(name string, v string) *string {
				if f.changed(name) {
					return &v
				}
				return nil
			}
			u.Number, u.URL, u.User = str("number", f.number), str("url", f.url), str("user", f.user)
			if f.changed("events") {
				u.Events = append([]string{}, f.events...)
			}
			if f.changed("format") {
				ff := formats.Format(f.format)
				u.Format = &ff
			}
			if f.passwordGiven {
				u.Password = &f.password
			}
			if f.secretGiven {
				u.Secret = &f.secret
			}
			if f.changed("domain-id") {
				u.DomainID = &f.domainID
			}
			if f.changed("account-id") {
				u.AccountID = &f.accountID
			}
			if f.changed("timeout") {
				u.Timeout = &f.timeout
			}
			if f.changed("insecure-skip-verify") {
				u.InsecureSkipVerify = &f.insecure
			}
			if f.changed("max-in-flight") {
				u.MaxInFlight = &f.maxInFlight
			}
			return db.WithHooks(false, func(ctx context.Context, s hooks.Catalog) error {
				cur, err := s.GetHook(ctx, id)
				if err != nil {
					return err
				}
				if err := f.request.update(&u, cur, f.changed); err != nil {
					return err
				}
				h, err := s.UpdateHook(ctx, id, u)
				if err != nil {
					return err
				}
				if u.URL != nil {
					warnRefused(ctx, cmd.ErrOrStderr(), h)
				}
				if u.URL != nil || u.Number != nil {
					warnTwins(ctx, cmd.ErrOrStderr(), s, h)
				}
				return out(cmd).hook(h)
			})
		}),
	}
	f.register(cmd, false)
	return cmd
}

func listCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the hooks",
		Long: `List every hook by id: its number, URL, events ("all" for the default
seven), format, whether it uses Basic auth (the password masked) and a
signing secret, whether it is enabled, and how many of its events are held
while it is disabled, and whether it skips TLS verification. 'kanca hooks
show ID' adds its timeout and ids; --json prints every field, credentials masked, for
scripts.

A hook that kanca disabled itself (its receiver answered 410 Gone) shows
ENABLED no; 'kanca hooks show ID' says why.`,
		Example: "  kanca hooks list\n  kanca hooks list --json",
		Args:    cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			return db.WithHooks(false, func(ctx context.Context, s hooks.Catalog) error {
				hs, err := s.ListHooks(ctx)
				if err != nil {
					return err
				}
				return out(cmd).hooks(hs)
			})
		}),
	}
}

func showCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	var preset, lang, method string
	cmd := &cobra.Command{
		Use:   "show ID | --preset NAME",
		Short: "Show one hook (credentials masked), or the templates of a preset",
		Long: `Show one hook with every setting, credentials masked: the fields of
'kanca hooks list' plus domain and account ids, its request (method,
preset, templates, params), when it was created and last changed, and,
when kanca disabled it, why. Its deliveries are listed by 'kanca
deliveries list --hook ID'.

With --preset NAME (and --lang, --method GET for echobell) it prints the
templates that preset expands to, so they can be copied, edited and given
to --url-template, --body-template-file and --header-template, or with
--json put in a subscription file's "templates".`,
		Example: `  kanca hooks show 1
  kanca hooks show --preset slack --lang en
  kanca hooks show --preset echobell --method GET --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("preset") {
				if len(args) > 0 {
					return fmt.Errorf("give a hook id or --preset, not both")
				}
				p, err := templates.LookupPreset(preset, lang, strings.ToUpper(method))
				if err != nil {
					return err
				}
				return out(cmd).preset(p, lang)
			}
			if len(args) == 0 {
				return fmt.Errorf("give a hook id (see kanca hooks list) or --preset NAME")
			}
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return db.WithHooks(false, func(ctx context.Context, s hooks.Catalog) error {
				h, err := s.GetHook(ctx, id)
				if err != nil {
					return err
				}
				if err := out(cmd).hook(h); err != nil {
					return err
				}
				return out(cmd).templates(h)
			})
		}),
	}
	cmd.Flags().StringVar(&preset, "preset", "", "print the templates of this preset ("+strings.Join(templates.PresetNames, ", ")+")")
	cmd.Flags().StringVar(&lang, "lang", templates.Langs[0], "the preset's language: "+strings.Join(templates.Langs, " or "))
	cmd.Flags().StringVar(&method, "method", "", "the preset's method: GET for echobell's query variant")
	return cmd
}

func removeCmd(db *storecli.Target) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a hook, with its queued and past deliveries",
		Long: `Remove a hook for good, together with its deliveries: queued ones are
never sent, and its delivery history and attempts are deleted. To stop a
hook for a while and keep its queue, use 'kanca hooks disable' instead.`,
		Example: "  kanca hooks remove 1",
		Args:    cobra.ExactArgs(1),
		RunE: onHook(db, func(ctx context.Context, cmd *cobra.Command, s hooks.Catalog, id int64) error {
			if err := s.RemoveHook(ctx, id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed hook %d\n", id)
			return nil
		}),
	}
}

func enableCmd(db *storecli.Target) *cobra.Command {
	var discard bool
	cmd := &cobra.Command{
		Use:   "enable ID",
		Short: "Enable a hook: what waited for it is sent",
		Long: `Enable a hook: the deliveries queued before it was disabled, and the events
held while it was disabled, are sent in order per call, and the events of
new calls reach it again. --discard-held drops the held events instead
(a receiver that must not get a maintenance window's calls late) and says
how many.

This also re-enables a hook that kanca disabled because its receiver
answered 410 Gone; the deliveries given up then stay dead until 'kanca
deliveries retry --dead --hook ID'.`,
		Example: "  kanca hooks enable 1\n  kanca hooks enable 1 --discard-held",
		Args:    cobra.ExactArgs(1),
		RunE: onHook(db, func(ctx context.Context, cmd *cobra.Command, s hooks.Catalog, id int64) error {
			n, err := s.Enable(ctx, id, discard)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case discard:
				fmt.Fprintf(w, "enabled hook %d; discarded %d held events\n", id, n)
			case n > 0:
				fmt.Fprintf(w, "enabled hook %d; %d held events are sent now, in order per call\n", id, n)
			default:
				fmt.Fprintf(w, "enabled hook %d\n", id)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&discard, "discard-held", false, "drop the events held while the hook was disabled instead of sending them")
	return cmd
}

func disableCmd(db *storecli.Target) *cobra.Command {
	return &cobra.Command{
		Use:   "disable ID",
		Short: "Disable a hook: nothing is sent to it, its events are held",
		Long: `Disable a hook, for example while its receiver is down for maintenance:
nothing is sent to it, the deliveries already queued wait (their retry
schedule does not run down), and the events of calls that happen while it
is disabled are held for it, not lost. 'kanca hooks list' shows how many
are held; 'kanca hooks enable' sends them, or drops them with
--discard-held. Held events expire with dead deliveries (kanca run
--dead-retention, 30 days by default).`,
		Example: "  kanca hooks disable 1",
		Args:    cobra.ExactArgs(1),
		RunE: onHook(db, func(ctx context.Context, cmd *cobra.Command, s hooks.Catalog, id int64) error {
			if err := s.SetEnabled(ctx, id, false); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "disabled hook %d; its events are held until 'kanca hooks enable %d'\n", id, id)
			return nil
		}),
	}
}

func testCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	var event string
	cmd := &cobra.Command{
		Use:   "test ID",
		Short: "Send a sample event to a hook now and show the answer",
		Long: `Send a sample event to a hook now, outside the queue: nothing is stored or
retried. The hook's format, credentials and signing are used, and it is sent
even if the hook is disabled. Exits non-zero unless the answer is a 2xx.

It prints the status and the start of the receiver's answer: a 200 with
an empty answer often means a receiver that did not understand the body
(a form receiver fed JSON answers just so). An --event the hook did not
ask for is sent, in the spelling given, with a warning: kanca run would
not send it to this hook. --json prints the same for scripts.

The networks kanca run may deliver to (KANCA_HOOK_ALLOW_NET and
KANCA_HOOK_DENY_NET) limit the test too.`,
		Example: "  kanca hooks test 1\n  kanca hooks test 1 --event incoming_call_extension",
		Args:    cobra.ExactArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			t, err := cdr.ParseEventType(event)
			if err != nil {
				return err
			}
			// Tested as kanca run would send it, refusals included.
			policy, err := envNetPolicy()
			if err != nil {
				return err
			}
			return db.WithHooks(false, func(ctx context.Context, s hooks.Catalog) error {
				h, err := s.GetHook(ctx, id)
				if err != nil {
					return err
				}
				ev := hooks.SampleEvent(t, h.Number, time.Now())
				if _, ok := h.EventName(t); !ok {
					// Not an event of this hook: send it in the spelling asked.
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: hook %d did not ask for %s (it gets %s); sent anyway, kanca run would not send it\n",
						id, event, strings.Join(h.Events, ", "))
					h.Events = []string{event}
				}
				r, err := hooks.NewSender(0, nil, policy).Test(ctx, h, ev, hooks.Encoding{})
				if err != nil {
					return err
				}
				p := out(cmd)
				if p.JSON {
					res := testResult{Hook: id, Event: event, Status: r.Status, LatencyMS: r.Latency.Milliseconds(), Answer: r.Response, OK: r.OK()}
					if r.Err != nil {
						res.Error = r.Err.Error()
					}
					if err := table.PrintJSON(p.W, res); err != nil {
						return err
					}
				}
				w := p.W
				if p.JSON {
					w = io.Discard
				}
				if r.Err != nil {
					fmt.Fprintf(w, "no answer after %s\n", r.Latency.Round(time.Millisecond))
					return fmt.Errorf("test delivery to hook %d failed: %w", id, r.Err)
				}
				// Always in milliseconds: a local receiver answers within one, and
				// Duration.String says "0s" then.
				fmt.Fprintf(w, "HTTP %d %s in %dms\n", r.Status, http.StatusText(r.Status), r.Latency.Round(time.Millisecond).Milliseconds())
				if r.Response != "" {
					fmt.Fprintln(w, firstBytes(r.Response, 256))
				} else {
					fmt.Fprintf(w, "(empty answer: if the receiver should have said something, check that it takes --format %s)\n", h.Format)
				}
				if !r.OK() {
					return fmt.Errorf("test delivery to hook %d failed: HTTP %d", id, r.Status)
				}
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&event, "event", string(cdr.CallHangup), "the event to send")
	return cmd
}

// testResult is `hooks test --json`.
type testResult struct {
	Hook      int64  `json:"hook"`
	Event     string `json:"event"`
	OK        bool   `json:"ok"`
	Status    int    `json:"status,omitempty"`
	LatencyMS int64  `json:"latency_ms"`
	Answer    string `json:"answer"` // the start of the receiver's answer
	Error     string `json:"error,omitempty"`
}

func firstBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// printer writes hooks as a table or as JSON. Hook's own JSON masks
// credentials; the table masks them here.
type printer struct{ table.Printer }

func (p printer) hooks(hs []hooks.Hook) error {
	if hs == nil {
		hs = []hooks.Hook{}
	}
	rows := make([][]string, len(hs))
	for i, h := range hs {
		rows[i] = []string{strconv.FormatInt(h.ID, 10), h.Number, h.URL,
			events(h), string(h.Format), auth(h), masked(h.Secret), table.YesNo(h.Enabled),
			strconv.Itoa(h.Held), table.YesNo(h.InsecureSkipVerify)}
	}
	return p.List(hs, []string{"ID", "NUMBER", "URL", "EVENTS", "FORMAT", "AUTH", "SECRET", "ENABLED", "HELD", "INSECURE"}, rows)
}

func (p printer) hook(h hooks.Hook) error {
	fs := []table.Field{
		table.F("id", strconv.FormatInt(h.ID, 10)),
		table.F("number", h.Number),
		table.F("url", h.URL),
		table.F("events", strings.Join(h.Events, ", ")),
		table.F("format", string(h.Format)),
		table.F("user", table.Dash(h.User)),
		table.F("password", masked(h.Password)),
		table.F("secret", masked(h.Secret)),
		table.F("domain id", optInt(h.DomainID)),
		table.F("account id", optInt(h.AccountID)),
		table.F("enabled", table.YesNo(h.Enabled)),
		table.F("held", strconv.Itoa(h.Held)),
	}
	if h.DisabledReason != "" {
		fs = append(fs, table.F("disabled because", h.DisabledReason))
	}
	fs = append(fs, table.F("method", h.Method))
	if h.Preset != "" {
		fs = append(fs, table.F("preset", h.Preset+" ("+h.Lang+")"))
	}
	fs = append(fs, table.F("time zone", table.Dash(h.TZ)))
	for _, kv := range paramList(h) {
		fs = append(fs, table.F("param", kv))
	}
	fs = append(fs,
		table.F("timeout", h.Timeout.String()),
		table.F("insecure skip verify", table.YesNo(h.InsecureSkipVerify)),
		table.F("max in flight", strconv.Itoa(h.MaxInFlight)),
		table.F("created", h.Created.Format(time.RFC3339)),
		table.F("updated", h.Updated.Format(time.RFC3339)))
	return p.Record(h, fs)
}

// events keeps the list narrow: a hook with the default set shows "all".
func events(h hooks.Hook) string {
	if slices.Equal(h.Events, hooks.AllEvents()) {
		return "all"
	}
	return strings.Join(h.Events, ",")
}

func auth(h hooks.Hook) string {
	if h.User == "" {
		return "-"
	}
	return h.User + ":" + masked(h.Password)
}

func masked(s string) string {
	if s == "" {
		return "-"
	}
	return hooks.Mask
}

func optInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

// warnTwins warns when h has the number and URL of another hook: the
// receiver gets each call's events from both, and kanca hooks import, which
// knows a hook by its number and URL, refuses a file exported with both.
func warnTwins(ctx context.Context, w io.Writer, s hooks.Catalog, h hooks.Hook) {
	hs, err := s.ListHooks(ctx)
	if err != nil {
		return
	}
	for _, id := range hooks.Twins(hs, h) {
		fmt.Fprintf(w, "warning: hook %d sends the calls of %s to the same URL: the receiver gets every event twice, and kanca hooks import refuses an export holding both; change hook %d instead (kanca hooks update %d) and remove this one (kanca hooks remove %d)\n", id, h.Number, id, id, h.ID)
	}
}
