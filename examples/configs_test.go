package examples_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kanca/kanca/cdr"
)

// section is one [name](templates) block of an Asterisk .conf file.
type section struct {
	name      string
	templates []string // (tpl) after the name; "!" marks a template itself
	values    [][2]string
}

func (s section) get(key string) []string {
	var out []string
	for _, kv := range s.values {
		if kv[0] == key {
			out = append(out, kv[1])
		}
	}
	return out
}

func (s section) first(key string) string {
	if v := s.get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseConf reads an Asterisk configuration file: sections, key = value
// and key => value lines (both kept, in order), ; comments.
func parseConf(t testing.TB, path string) []section {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []section
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.Index(text, ";"); i >= 0 && (i == 0 || text[i-1] != '\\') {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" || strings.HasPrefix(text, "#") { // # for systemd units
			continue
		}
		if strings.HasPrefix(text, "[") {
			end := strings.Index(text, "]")
			require.Positive(t, end, "%s:%d: bad section header", path, line)
			s := section{name: text[1:end]}
			if rest := strings.TrimSpace(text[end+1:]); rest != "" {
				require.True(t, strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")"), "%s:%d: %q", path, line, rest)
				for _, tpl := range strings.Split(rest[1:len(rest)-1], ",") {
					s.templates = append(s.templates, strings.TrimSpace(tpl))
				}
			}
			out = append(out, s)
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		require.True(t, ok, "%s:%d: not key = value: %q", path, line, text)
		require.NotEmpty(t, out, "%s:%d: a value before any section", path, line)
		value = strings.TrimSpace(strings.TrimPrefix(value, ">"))
		out[len(out)-1].values = append(out[len(out)-1].values, [2]string{strings.TrimSpace(key), value})
	}
	require.NoError(t, sc.Err())
	return out
}

func sectionsNamed(secs []section, name string) []section {
	var out []section
	for _, s := range secs {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// typeOf is a pjsip section's type, inherited from its templates.
func typeOf(secs []section, s section) string {
	if t := s.first("type"); t != "" {
		return t
	}
	for _, tpl := range s.templates {
		for _, p := range sectionsNamed(secs, tpl) {
			if slices.Contains(p.templates, "!") {
				if t := typeOf(secs, p); t != "" {
					return t
				}
			}
		}
	}
	return ""
}

// priority is one step of a dialplan extension.
type priority struct{ app, data string }

// dialplan is context -> extension -> its priorities, in order.
type dialplan map[string]map[string][]priority

var appCall = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)(?:\((.*)\))?$`)

func parseDialplan(t testing.TB, path string) dialplan {
	t.Helper()
	dp := dialplan{}
	for _, s := range parseConf(t, path) {
		if s.name == "general" || s.name == "globals" {
			continue
		}
		ctx := map[string][]priority{}
		dp[s.name] = ctx
		exten := ""
		for _, kv := range s.values {
			var step string
			switch kv[0] {
			case "exten":
				parts := strings.SplitN(kv[1], ",", 3)
				require.Len(t, parts, 3, "%s [%s]: %q", path, s.name, kv[1])
				exten, step = strings.TrimSpace(parts[0]), parts[2]
				require.Equal(t, "1", strings.TrimSpace(parts[1]), "%s [%s] %s starts at priority 1", path, s.name, exten)
			case "same":
				require.NotEmpty(t, exten, "%s [%s]: same => before any exten", path, s.name)
				_, rest, ok := strings.Cut(kv[1], ",")
				require.True(t, ok, "%s [%s]: %q", path, s.name, kv[1])
				step = rest
			default:
				continue
			}
			m := appCall.FindStringSubmatch(strings.TrimSpace(step))
			require.NotNil(t, m, "%s [%s] %s: not an application call: %q", path, s.name, exten, step)
			ctx[exten] = append(ctx[exten], priority{app: m[1], data: m[2]})
		}
	}
	return dp
}

// shape is what an extension does, ignoring logging and variables: the
// applications it runs, a Dial to several phones marked as Dial&.
func shape(steps []priority) string {
	var apps []string
	for _, p := range steps {
		switch p.app {
		case "NoOp", "Set", "Verbose":
			continue
		case "Dial":
			if strings.Contains(p.data, "&") {
				apps = append(apps, "Dial&")
				continue
			}
		}
		apps = append(apps, p.app)
	}
	return strings.Join(apps, ",")
}

func shapes(ctx map[string][]priority) map[string]bool {
	out := map[string]bool{}
	for _, steps := range ctx {
		out[shape(steps)] = true
	}
	return out
}

func steps(ctx map[string][]priority, exten string) []string {
	var out []string
	for _, p := range ctx[exten] {
		out = append(out, p.app)
	}
	return out
}

// TestAsteriskDialplan checks that the example dialplan has the shapes of
// the reference one that kanca's recorded traces come from, and that what
// it names exists in the other files.
func TestAsteriskDialplan(t *testing.T) {
	ref := parseDialplan(t, filepath.Join("..", "testdata", "ari", "config", "extensions.conf"))
	ex := parseDialplan(t, filepath.Join("asterisk", "extensions.conf"))
	for _, name := range []string{"from-trunk", "ivr-main", "from-internal"} {
		require.Contains(t, ref, name, "the reference dialplan changed")
		require.Contains(t, ex, name)
		have := shapes(ex[name])
		for s := range shapes(ref[name]) {
			assert.True(t, have[s], "[%s] has no extension shaped %q like the reference's", name, s)
		}
	}

	// from-trunk: DIDs to an extension, a ring group, a queue, a fax and the
	// IVR, each naming its public number for kanca.
	trunk := ex["from-trunk"]
	var apps []string
	for exten, st := range trunk {
		for _, p := range st {
			apps = append(apps, p.app)
			if p.app == "Goto" {
				target := strings.Split(p.data, ",")[0]
				assert.Contains(t, ex, target, "%s goes to a context that exists", exten)
			}
		}
		if len(exten) > 6 {
			assert.Contains(t, st, priority{"Set", "__DID=${EXTEN}"}, "DID %s sets DID for kanca", exten)
		}
	}
	for _, app := range []string{"Dial", "Queue", "ReceiveFax", "Goto"} {
		assert.Contains(t, apps, app, "[from-trunk] uses %s", app)
	}
	assert.Contains(t, shapes(trunk), "Dial&,Hangup", "a ring group")

	// ivr-main: answer, play the menu, wait for a digit.
	s := steps(ex["ivr-main"], "s")
	require.NotEmpty(t, s)
	assert.Equal(t, "Answer", s[0])
	bg, wait := slices.Index(s, "Background"), slices.Index(s, "WaitExten")
	assert.True(t, bg >= 0 && wait > bg, "ivr-main s: Background then WaitExten: %v", s)

	// from-internal: an outbound pattern dialling through the trunk.
	outbound := false
	for exten, st := range ex["from-internal"] {
		for _, p := range st {
			if p.app == "Dial" && strings.HasPrefix(exten, "_") && strings.HasSuffix(strings.Split(p.data, ",")[0], "@trunk") {
				outbound = true
			}
		}
	}
	assert.True(t, outbound, "[from-internal] has a _pattern Dialling PJSIP/${EXTEN}@trunk")

	// Every endpoint dialled and queue joined exists.
	pjsip := parseConf(t, filepath.Join("asterisk", "pjsip.conf"))
	endpoints := map[string]bool{}
	for _, sec := range pjsip {
		if typeOf(pjsip, sec) == "endpoint" && !slices.Contains(sec.templates, "!") {
			endpoints[sec.name] = true
		}
	}
	for _, want := range []string{"trunk", "1000", "1001", "1002"} {
		assert.True(t, endpoints[want], "pjsip.conf has endpoint %s", want)
	}
	queues := map[string]bool{}
	for _, sec := range parseConf(t, filepath.Join("asterisk", "queues.conf")) {
		if sec.name != "general" {
			queues[sec.name] = true
			assert.NotEmpty(t, sec.get("member"), "queue %s has members", sec.name)
		}
	}
	dialTarget := regexp.MustCompile(`PJSIP/([^&,/@$]+)`)
	for name, ctx := range ex {
		for exten, st := range ctx {
			for _, p := range st {
				switch p.app {
				case "Dial":
					target := strings.Split(p.data, ",")[0]
					for _, m := range dialTarget.FindAllStringSubmatch(target, -1) {
						assert.True(t, endpoints[m[1]], "[%s] %s dials unknown endpoint %s", name, exten, m[1])
					}
					if _, ep, ok := strings.Cut(target, "@"); ok {
						assert.True(t, endpoints[ep], "[%s] %s dials through unknown endpoint %s", name, exten, ep)
					}
				case "Queue":
					q := strings.Split(p.data, ",")[0]
					assert.True(t, queues[q], "[%s] %s joins unknown queue %s", name, exten, q)
				}
			}
		}
	}
	for _, sec := range pjsip {
		if typeOf(pjsip, sec) == "endpoint" && sec.first("context") != "" {
			assert.Contains(t, ex, sec.first("context"), "endpoint %s's context exists", sec.name)
		}
	}
}

// TestAsteriskARI checks what kanca needs from ari.conf and http.conf, and
// that the compose stack's credentials match.
func TestAsteriskARI(t *testing.T) {
	ariConf := parseConf(t, filepath.Join("asterisk", "ari.conf"))
	general := sectionsNamed(ariConf, "general")
	require.Len(t, general, 1)
	assert.Equal(t, "yes", general[0].first("enabled"))
	vars := strings.Split(general[0].first("channelvars"), ",")
	for i := range vars {
		vars[i] = strings.TrimSpace(vars[i])
	}
	assert.Contains(t, vars, "CHANNEL(linkedid)", "[general] channelvars carries the linkedid")
	assert.Contains(t, vars, "DID")
	users := sectionsNamed(ariConf, "kanca")
	require.Len(t, users, 1)
	assert.Equal(t, "user", users[0].first("type"))
	assert.Equal(t, "no", users[0].first("read_only"))
	password := users[0].first("password")
	assert.NotEmpty(t, password)

	http := sectionsNamed(parseConf(t, filepath.Join("asterisk", "http.conf")), "general")
	require.Len(t, http, 1)
	assert.Equal(t, "yes", http[0].first("enabled"))
	assert.Equal(t, "0.0.0.0", http[0].first("bindaddr"))
	assert.Equal(t, "8088", http[0].first("bindport"))

	modules := sectionsNamed(parseConf(t, filepath.Join("asterisk", "modules.conf")), "modules")
	require.Len(t, modules, 1)
	for _, m := range []string{"res_ari.so", "res_http_websocket.so", "res_pjsip.so", "app_queue.so"} {
		assert.Contains(t, modules[0].get("require"), m)
	}

	// docker-compose.yml: the stack wires kanca to this Asterisk.
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   []string          `yaml:"depends_on"`
		} `yaml:"services"`
	}
	data, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &compose))
	ast, kanca, crm := compose.Services["asterisk"], compose.Services["kanca"], compose.Services["crm"]
	assert.NotEmpty(t, ast.Image)
	for _, f := range []string{"ari.conf", "http.conf", "pjsip.conf", "extensions.conf", "queues.conf", "modules.conf"} {
		assert.Contains(t, ast.Volumes, "./examples/asterisk/"+f+":/etc/asterisk/"+f+":ro")
		_, err := os.Stat(filepath.Join("asterisk", f))
		assert.NoError(t, err)
	}
	assert.Equal(t, ".", kanca.Build)
	assert.Equal(t, "http://asterisk:"+http[0].first("bindport"), kanca.Environment["KANCA_ARI_URL"])
	assert.Equal(t, "kanca", kanca.Environment["KANCA_ARI_USER"])
	assert.Equal(t, "${KANCA_ARI_PASSWORD:-"+password+"}", kanca.Environment["KANCA_ARI_PASSWORD"])
	assert.Contains(t, kanca.DependsOn, "asterisk")
	assert.Equal(t, "php:8.3-cli", crm.Image)
	assert.Equal(t, []string{"php", "-S", "0.0.0.0:8080", "-t", "/app/crm"}, crm.Command)
	assert.Contains(t, crm.Volumes, "./examples/php:/app:ro")
}

// TestKancaFiles checks the dialplan mapping example parses as kanca reads
// it, and the systemd unit and env file agree.
func TestKancaFiles(t *testing.T) {
	data, err := os.ReadFile("dialplan.yaml.example")
	require.NoError(t, err)
	cfg, err := cdr.ParseConfig(data)
	require.NoError(t, err)
	assert.Equal(t, 90, cfg.CountryCode)
	assert.Equal(t, "600", cfg.Names["sales"])
	assert.Equal(t, []string{"trunk"}, cfg.Trunks)
	for _, ctx := range []string{"from-trunk", "ivr-main", "from-internal"} {
		matched := false
		for _, list := range [][]string{cfg.Contexts.Inbound, cfg.Contexts.Menu, cfg.Contexts.Internal} {
			for _, p := range list {
				if ok, _ := filepath.Match(p, ctx); ok {
					matched = true
				}
			}
		}
		assert.True(t, matched, "the mapping knows the example context %s", ctx)
	}

	unit := parseConf(t, "kanca.service")
	service := sectionsNamed(unit, "Service")
	require.Len(t, service, 1)
	assert.Equal(t, "/usr/local/bin/kanca run", service[0].first("ExecStart"))
	assert.Equal(t, "/etc/kanca/kanca.env", service[0].first("EnvironmentFile"))
	assert.Equal(t, "on-failure", service[0].first("Restart"))
	assert.Equal(t, "kanca", service[0].first("StateDirectory"))
	assert.Equal(t, "yes", service[0].first("DynamicUser"))
	assert.Equal(t, "yes", service[0].first("NoNewPrivileges"))

	env := map[string]string{}
	envData, err := os.ReadFile("kanca.env.example")
	require.NoError(t, err)
	for _, l := range strings.Split(string(envData), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			env[k] = v
		}
	}
	assert.Equal(t, "/var/lib/kanca/kanca.db", env["KANCA_DB"], "the database is in the unit's StateDirectory")
	for _, k := range []string{"KANCA_ARI_URL", "KANCA_ARI_USER", "KANCA_ARI_PASSWORD"} {
		assert.NotEmpty(t, env[k], k)
	}
}
