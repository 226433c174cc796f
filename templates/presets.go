package templates

import (
	"fmt"
	"slices"
	"strings"
)

// Preset is the request a chat or notification app's incoming webhook
// reads, ready to use: `kanca hooks add --preset NAME`.
type Preset struct {
	Name   string
	Method string // POST or GET
	Set    Set
	// Events a hook with this preset gets when it names none: nil for all.
	Events []string
	// Params the templates read with param; the hook must set them.
	Params []string
	// URL says where the hook's --url comes from.
	URL string
}

// Langs are the languages of the presets' messages; the first is the default.
var Langs = []string{"tr", "en"}

// PresetNames lists the presets.
var PresetNames = []string{"slack", "mattermost", "teams", "discord", "telegram", "echobell", "alertalk"}

// words are the few fixed words of the presets in each language.
var words = map[string]map[string]string{
	"tr": {"LINK": "Çağrı kaydı"},
	"en": {"LINK": "Call record"},
}

// texts define "text", the one-line message every preset sends, and
// "alert", what a voice call reads out.
var texts = map[string]string{
	"tr": `{{- define "text"}}{{$k := kind .event_type}}
{{- if eq $k "call_init"}}{{if eq .direction "OUT"}}Giden çağrı{{else}}Gelen çağrı{{end}}: {{national .caller}} → {{national .callee}} ({{time "15:04" .timestamp}})
{{- else if eq $k "fax_init"}}Gelen faks: {{national .caller}} → {{national .callee}} ({{time "15:04" .timestamp}})
{{- else if eq $k "call_init_extension"}}{{national .caller}} çağrısı {{.destination}} dahilisine yönlendirildi
{{- else if eq $k "call_init_group"}}{{national .caller}} çağrısı {{.destination}} grubuna yönlendirildi
{{- else if eq $k "call_init_menu"}}{{national .caller}} çağrısı {{.destination}} menüsüne yönlendirildi
{{- else if eq $k "missing_call"}}Cevapsız çağrı: {{national .caller}} → {{national .callee}} ({{time "15:04" .timestamp}})
{{- else}}{{with answered .}}Görüşme bitti: {{national $.caller}} → {{national $.callee}}, {{national .}} cevapladı, {{duration $.talk_duration}} sürdü
{{- else}}Çağrı cevaplanmadan bitti: {{national .caller}} → {{national .callee}}{{end}}
{{- end}}{{end}}
{{- define "alert"}}{{if eq (kind .event_type) "missing_call"}}Cevapsız çağrı. Arayan {{national .caller}}, aranan {{national .callee}}, saat {{time "15:04" .timestamp}}.{{else}}{{include "text" .}}{{end}}{{end}}
`,
	"en": `{{- define "text"}}{{$k := kind .event_type}}
{{- if eq $k "call_init"}}{{if eq .direction "OUT"}}Outgoing call{{else}}Incoming call{{end}}: {{national .caller}} → {{national .callee}} ({{time "15:04" .timestamp}})
{{- else if eq $k "fax_init"}}Incoming fax: {{national .caller}} → {{national .callee}} ({{time "15:04" .timestamp}})
{{- else if eq $k "call_init_extension"}}Call from {{national .caller}} routed to extension {{.destination}}
{{- else if eq $k "call_init_group"}}Call from {{national .caller}} routed to group {{.destination}}
{{- else if eq $k "call_init_menu"}}Call from {{national .caller}} routed to menu {{.destination}}
{{- else if eq $k "missing_call"}}Missed call: {{national .caller}} → {{national .callee}} ({{time "15:04" .timestamp}})
{{- else}}{{with answered .}}Call ended: {{national $.caller}} → {{national $.callee}}, answered by {{national .}}, talked {{duration $.talk_duration}}
{{- else}}Call ended unanswered: {{national .caller}} → {{national .callee}}{{end}}
{{- end}}{{end}}
{{- define "alert"}}{{if eq (kind .event_type) "missing_call"}}Missed call. Caller {{national .caller}}, called {{national .callee}}, at {{time "15:04" .timestamp}}.{{else}}{{include "text" .}}{{end}}{{end}}
`,
}

// apps are each app's request around the message, with its documented
// incoming-webhook shape. LINK is replaced by the language's word.
var apps = map[string]Preset{
	"slack": {
		URL: "the channel's Incoming Webhook URL (https://hooks.slack.com/services/...)",
		Set: Set{Body: `{"text": {{json (include "slack" .)}}}
{{- define "slack"}}{{include "text" .}}{{with index . "cdr_url"}} <{{.}}|LINK>{{end}}{{end}}`},
	},
	"mattermost": {
		URL: "the channel's incoming webhook URL (https://mattermost.example/hooks/...)",
		Set: Set{Body: `{"text": {{json (include "mattermost" .)}}}
{{- define "mattermost"}}{{include "text" .}}{{with index . "cdr_url"}} [LINK]({{.}}){{end}}{{end}}`},
	},
	"teams": {
		URL: "the URL of a Teams workflow started by \"When a Teams webhook request is received\"",
		Set: Set{Body: `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": {{json (include "text" .)}}, "wrap": true}]{{with index . "cdr_url"}}, "actions": [{"type": "Action.OpenUrl", "title": "LINK", "url": {{json .}}}]{{end}}}}]}`},
	},
	"discord": {
		URL: "the channel's webhook URL (https://discord.com/api/webhooks/...)",
		Set: Set{Body: `{"content": {{json (truncate 2000 (include "text" .))}}{{with index . "cdr_url"}}, "embeds": [{"title": "LINK", "url": {{json .}}}]{{end}}}`},
	},
	"telegram": {
		URL:    "the bot's sendMessage method (https://api.telegram.org/bot<TOKEN>/sendMessage)",
		Params: []string{"chat_id"},
		Set:    Set{Body: `{"chat_id": {{json (param "chat_id")}}, "text": {{json (truncate 4096 (include "text" .))}}{{with index . "cdr_url"}}, "reply_markup": {"inline_keyboard": [[{"text": "LINK", "url": {{json .}}}]]}{{end}}}`},
	},
	"echobell": {
		URL: "the channel's webhook URL (https://hook.echobell.one/t/...)",
		Set: Set{Body: `{"message": {{json (include "text" .)}}, "caller": {{json (national .caller)}}, "callee": {{json (national .callee)}}, "event": {{json (kind .event_type)}}{{with index . "cdr_url"}}, "externalLink": {{json .}}{{end}}}`},
	},
	"alertalk": {
		URL:    "Alertalk's webhook receiver (https://tr.alertalk.net/webhook/receive)",
		Events: []string{"missing_call"},
		Params: []string{"phone_number", "webhook_key"},
		Set: Set{
			Body:    `{"phone_number": {{json (param "phone_number")}}, "error_message": {{json (truncate 500 (include "alert" .))}}}`,
			Headers: map[string]string{"X-Webhook-Key": `{{param "webhook_key"}}`},
		},
	},
}

// echobellGET passes Echobell's variables in the query string instead.
const echobellGET = `{{url}}?message={{urlquery (include "text" .)}}&caller={{urlquery (national .caller)}}&callee={{urlquery (national .callee)}}&event={{kind .event_type}}{{with index . "cdr_url"}}&externalLink={{urlquery .}}{{end}}`

// LookupPreset expands preset name in lang for a hook sending with
// method ("" for the preset's own). Only echobell takes GET.
func LookupPreset(name, lang, method string) (Preset, error) {
	p, ok := apps[name]
	if !ok {
		return Preset{}, fmt.Errorf("unknown preset %q (valid: %s)", name, strings.Join(PresetNames, ", "))
	}
	if lang == "" {
		lang = Langs[0]
	}
	if !slices.Contains(Langs, lang) {
		return Preset{}, fmt.Errorf("unknown language %q (valid: %s)", lang, strings.Join(Langs, ", "))
	}
	p.Name, p.Method = name, "POST"
	switch method {
	case "", "POST":
	case "GET":
		if name != "echobell" {
			return Preset{}, fmt.Errorf("preset %s is sent with POST, not GET (only echobell takes GET)", name)
		}
		p.Method = "GET"
		p.Set = Set{URL: echobellGET}
	default:
		return Preset{}, fmt.Errorf("preset %s is sent with POST, not %s", name, method)
	}
	w := words[lang]
	sub := func(s string) string {
		for k, v := range w {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	set := Set{Headers: p.Set.Headers}
	if p.Set.Body != "" {
		set.Body = sub(p.Set.Body) + "\n" + strings.TrimSpace(texts[lang])
	}
	if p.Set.URL != "" {
		set.URL = sub(p.Set.URL) + "\n" + strings.TrimSpace(texts[lang])
	}
	p.Set = set
	return p, nil
}
