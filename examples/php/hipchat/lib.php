<?php
// The chat relays' shared half: the message a call event becomes, in
// Turkish or English, and the POST that carries it to the chat.
//
// Settings, from the environment (besides those of ../kanca_webhook.php):
//   KANCA_CHAT_LANG        tr (default) or en
//   KANCA_EXAMPLE_DRY_RUN  a file (or php://stderr): append the request that
//                          would be sent to it, one JSON line each, and send
//                          nothing

declare(strict_types=1);

require_once __DIR__ . '/../kanca_webhook.php';

const CHAT_TEXTS = [
    'tr' => [
        'call_init_IN' => 'Gelen arama: {caller} numarası {callee} numarasını arıyor.',
        'call_init_OUT' => 'Giden arama: {caller} numarası {callee} numarasını arıyor.',
        'call_init_extension' => '{caller} numarasının {callee} numarasına yaptığı arama {destination} dahilisine yönlendirildi.',
        'call_init_group' => '{caller} numarasının {callee} numarasına yaptığı arama {destination} grubuna yönlendirildi.',
        'call_init_menu' => '{caller} numarasının {callee} numarasına yaptığı arama {destination} menüsüne yönlendirildi.',
        'fax_init' => '{caller} numarasından {callee} numarasına yeni faks geliyor.',
        'call_hangup' => '{caller} ile {callee} arasındaki görüşme sona erdi ({duration} sn).',
        'call_hangup_unanswered' => '{caller} numarasının {callee} numarasına yaptığı arama cevaplanmadan sona erdi ({cause}).',
        'call_hangup_fax' => '{caller} numarasından {callee} numarasına gelen faks görüşmesi sona erdi ({cause}).',
        'missing_call' => 'CEVAPSIZ ARAMA: {caller} numarası {callee} numarasını aradı, kimse cevap vermedi ({cause}).',
    ],
    'en' => [
        'call_init_IN' => 'Incoming call: {caller} is calling {callee}.',
        'call_init_OUT' => 'Outgoing call: {caller} is calling {callee}.',
        'call_init_extension' => 'The call from {caller} to {callee} was put through to extension {destination}.',
        'call_init_group' => 'The call from {caller} to {callee} was put through to group {destination}.',
        'call_init_menu' => 'The call from {caller} to {callee} entered menu {destination}.',
        'fax_init' => 'Incoming fax from {caller} to {callee}.',
        'call_hangup' => 'The call between {caller} and {callee} ended after {duration} s.',
        'call_hangup_unanswered' => 'The call from {caller} to {callee} ended unanswered ({cause}).',
        'call_hangup_fax' => 'The fax call from {caller} to {callee} ended ({cause}).',
        'missing_call' => 'MISSED CALL: {caller} called {callee} and nobody answered ({cause}).',
    ],
];

function chat_lang(): string
{
    $lang = strtolower(kanca_env('KANCA_CHAT_LANG', 'tr'));
    return isset(CHAT_TEXTS[$lang]) ? $lang : 'tr';
}

// The message for an event: kind (the text's key), text, HipChat color and
// whether to notify the room; null for an event this relay does not know,
// which it acknowledges without posting anything.
function chat_message(array $ev, string $lang): ?array
{
    $type = kanca_event_type($ev);
    $cdr = is_array($ev['cdr'] ?? null) ? $ev['cdr'] : [];
    $answered = kanca_str($cdr['answer_time'] ?? null) !== '' || (int)kanca_str($ev['talk_duration'] ?? null) > 0;
    switch ($type) {
        case 'call_init':
            $kind = kanca_str($ev['direction'] ?? null) === 'OUT' ? 'call_init_OUT' : 'call_init_IN';
            $color = 'green';
            break;
        case 'call_init_extension':
        case 'call_init_group':
        case 'call_init_menu':
            $kind = $type;
            $color = 'yellow';
            break;
        case 'fax_init':
            $kind = $type;
            $color = 'purple';
            break;
        case 'call_hangup':
            if (kanca_str($cdr['bf_calltype'] ?? null) === 'fax') {
                $kind = 'call_hangup_fax';
            } else {
                $kind = $answered ? 'call_hangup' : 'call_hangup_unanswered';
            }
            $color = 'gray';
            break;
        case 'missing_call':
            $kind = $type;
            $color = 'red';
            break;
        default:
            return null;
    }
    $text = strtr(CHAT_TEXTS[$lang][$kind], [
        '{caller}' => chat_number($ev['caller'] ?? null),
        '{callee}' => chat_number($ev['callee'] ?? null),
        // Extensions, groups and menus are the PBX's own numbers: as they came.
        '{destination}' => kanca_str($ev['destination'] ?? null) ?: '?',
        '{duration}' => (string)(int)kanca_str($ev['talk_duration'] ?? null),
        '{cause}' => kanca_str($ev['hangup_cause'] ?? null) ?: '?',
    ]);
    return [
        'kind' => $kind,
        'text' => $text,
        'color' => $color,
        'notify' => $type === 'missing_call' || $type === 'fax_init',
        'missed' => $type === 'missing_call',
    ];
}

// A number as shown in the chat: international numbers with a +, the rest
// (extensions, anonymous callers, named queues) as they came.
function chat_number(mixed $v): string
{
    $s = kanca_str($v);
    if ($s === '') {
        return '?';
    }
    return (ctype_digit($s) && strlen($s) > 7) ? '+' . $s : $s;
}

// POSTs a JSON payload to a chat. Returns '' when the chat took it, else
// what went wrong. TLS certificates are always verified.
function chat_post(string $service, string $url, array $payload, array $headers = []): string
{
    $json = json_encode($payload, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    $sink = kanca_env('KANCA_EXAMPLE_DRY_RUN');
    if ($sink !== '') {
        $line = json_encode(['service' => $service, 'url' => $url, 'payload' => $payload],
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) . "\n";
        // A file takes a lock, so lines of concurrent requests do not mix;
        // php://stderr (the server's log) cannot be locked.
        $flags = str_starts_with($sink, 'php://') ? FILE_APPEND : FILE_APPEND | LOCK_EX;
        return file_put_contents($sink, $line, $flags) === false ? "cannot write $sink" : '';
    }
    if ($url === '') {
        return "no $service URL is configured";
    }
    if (!function_exists('curl_init')) {
        return 'the PHP curl extension is not installed';
    }
    $ch = curl_init($url);
    curl_setopt_array($ch, [
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => $json,
        CURLOPT_HTTPHEADER => array_merge(['Content-Type: application/json'], $headers),
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => 5,
        CURLOPT_TIMEOUT => 10,
        CURLOPT_SSL_VERIFYPEER => true,
        CURLOPT_SSL_VERIFYHOST => 2,
        CURLOPT_PROTOCOLS => CURLPROTO_HTTPS | CURLPROTO_HTTP,
    ]);
    $response = curl_exec($ch);
    $status = (int)curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    $error = curl_error($ch);
    curl_close($ch);
    if ($response === false) {
        return "$service: $error";
    }
    if ($status < 200 || $status > 299) {
        return "$service answered HTTP $status: " . substr((string)$response, 0, 200);
    }
    return '';
}

// The whole relay: receive, build the message, send it with $send. A chat
// that fails gets the webhook a 502, so kanca delivers it again later.
function chat_relay(callable $send): never
{
    [$ev] = kanca_receive();
    $msg = chat_message($ev, chat_lang());
    if ($msg === null) {
        kanca_respond(200, ['ignored' => kanca_str($ev['event_type'])]);
    }
    $error = $send($msg);
    if ($error !== '') {
        error_log('kanca chat relay: ' . $error);
        kanca_respond(502, ['error' => $error]);
    }
    kanca_respond(200, ['sent' => $msg['kind']]);
}
