<?php
// Reading one kanca (or Bulutfon) webhook request: HTTP Basic credentials,
// the optional Standard Webhooks signature, and the body in either format
// (application/json or x-www-form-urlencoded). Shared by the chat relays in
// hipchat/ and the CRM in crm/; copy it next to your own receiver.
//
// Settings, from the environment:
//   KANCA_HOOK_USER, KANCA_HOOK_PASSWORD  the hook's Basic credentials; when
//                                         either is set, requests without
//                                         them get 401
//   KANCA_HOOK_SECRET                     the hook's signing secret (plain or
//                                         whsec_<base64>); when set, requests
//                                         without a valid signature get 401

declare(strict_types=1);

// How far webhook-timestamp may be from now, in seconds (Standard Webhooks).
const KANCA_SIGNATURE_TOLERANCE = 300;

function kanca_env(string $name, string $default = ''): string
{
    $v = getenv($name);
    return ($v === false || $v === '') ? $default : $v;
}

// Ends the request with a status and a small JSON answer.
function kanca_respond(int $status, array $body, array $headers = []): never
{
    http_response_code($status);
    header('Content-Type: application/json');
    foreach ($headers as $h) {
        header($h);
    }
    echo json_encode($body, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
    exit;
}

// A request header, '' when absent.
function kanca_header(string $name): string
{
    $key = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
    return isset($_SERVER[$key]) ? trim((string)$_SERVER[$key]) : '';
}

// The Basic credentials the request carries, as [user, password], or null.
// PHP fills PHP_AUTH_USER under most servers; behind CGI/FPM the header may
// only reach us as HTTP_AUTHORIZATION.
function kanca_basic_credentials(): ?array
{
    if (isset($_SERVER['PHP_AUTH_USER'])) {
        return [(string)$_SERVER['PHP_AUTH_USER'], (string)($_SERVER['PHP_AUTH_PW'] ?? '')];
    }
    $auth = kanca_header('Authorization');
    if ($auth === '' && isset($_SERVER['REDIRECT_HTTP_AUTHORIZATION'])) {
        $auth = trim((string)$_SERVER['REDIRECT_HTTP_AUTHORIZATION']);
    }
    if (strncasecmp($auth, 'Basic ', 6) !== 0) {
        return null;
    }
    $decoded = base64_decode(trim(substr($auth, 6)), true);
    if ($decoded === false || !str_contains($decoded, ':')) {
        return null;
    }
    return explode(':', $decoded, 2);
}

// Whether the request carries the configured Basic credentials; true when
// none are configured.
function kanca_check_basic(string $user, string $password): bool
{
    if ($user === '' && $password === '') {
        return true;
    }
    $got = kanca_basic_credentials();
    if ($got === null) {
        return false;
    }
    $userOK = hash_equals($user, $got[0]);
    $passwordOK = hash_equals($password, $got[1]);
    return $userOK && $passwordOK;
}

// The HMAC key of a secret: whsec_<base64> is decoded, anything else is
// used as it is (as kanca does).
function kanca_signing_key(string $secret): string
{
    if (!str_starts_with($secret, 'whsec_')) {
        return $secret;
    }
    $key = base64_decode(substr($secret, 6), true);
    if ($key === false || $key === '') {
        throw new RuntimeException('the signing secret starts with whsec_ but the rest is not base64');
    }
    return $key;
}

// Checks the Standard Webhooks signature of a body: webhook-signature holds
// one or more space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
// Returns '' when it is valid, else the reason it is not.
function kanca_verify_signature(string $secret, string $body, ?int $now = null): string
{
    $id = kanca_header('webhook-id');
    $ts = kanca_header('webhook-timestamp');
    $signatures = kanca_header('webhook-signature');
    if ($id === '' || $ts === '' || $signatures === '') {
        return 'missing webhook-id, webhook-timestamp or webhook-signature';
    }
    if (!ctype_digit($ts)) {
        return 'webhook-timestamp is not a number of seconds';
    }
    $now ??= time();
    if (abs($now - (int)$ts) > KANCA_SIGNATURE_TOLERANCE) {
        return 'webhook-timestamp is more than 5 minutes from now';
    }
    $want = base64_encode(hash_hmac('sha256', $id . '.' . $ts . '.' . $body, kanca_signing_key($secret), true));
    foreach (preg_split('/\s+/', $signatures) as $signature) {
        $parts = explode(',', $signature, 2);
        if (count($parts) === 2 && $parts[0] === 'v1' && hash_equals($want, $parts[1])) {
            return '';
        }
    }
    return 'no webhook-signature matches the body';
}

// The request's media type without parameters, lower case.
function kanca_content_type(): string
{
    $ct = $_SERVER['CONTENT_TYPE'] ?? $_SERVER['HTTP_CONTENT_TYPE'] ?? '';
    return strtolower(trim(explode(';', (string)$ct)[0]));
}

// The event in a body, as json_decode($body, true) would give it, or null
// when the body is not a webhook. Form bodies come from $_POST, where every
// scalar is a string; read values through kanca_str.
function kanca_parse_body(string $raw): ?array
{
    $type = kanca_content_type();
    if ($type === 'application/json' || str_ends_with($type, '+json')) {
        try {
            // Numbers are 12-digit phone numbers and microsecond times: keep
            // anything beyond PHP's integers exact.
            $ev = json_decode($raw, true, 64, JSON_BIGINT_AS_STRING | JSON_THROW_ON_ERROR);
        } catch (JsonException) {
            return null;
        }
    } elseif ($type === 'application/x-www-form-urlencoded' || $type === 'multipart/form-data') {
        $ev = $_POST;
    } else {
        return null;
    }
    if (!is_array($ev) || kanca_str($ev['event_type'] ?? null) === '' || kanca_str($ev['uuid'] ?? null) === '') {
        return null;
    }
    return $ev;
}

// A scalar field as text, the same whichever format it came in: null and
// absent are '', true and false are '1' and '0' (as in form bodies).
function kanca_str(mixed $v): string
{
    if ($v === null || is_array($v)) {
        return '';
    }
    if (is_bool($v)) {
        return $v ? '1' : '0';
    }
    return (string)$v;
}

// The canonical name of an event, for the spellings a hook may ask for.
function kanca_event_type(array $ev): string
{
    $type = kanca_str($ev['event_type'] ?? null);
    return match ($type) {
        'call_init_manu' => 'call_init_menu',
        'incoming_call_extension' => 'call_init_extension',
        'incoming_call_group' => 'call_init_group',
        default => $type,
    };
}

// Reads and checks the request, answering it (and stopping) when it is
// refused: 405 not a POST, 401 wrong credentials or signature, 400 a body
// that is not a webhook. Returns [event, raw body, delivery id]. The
// delivery id is what a redelivery repeats: X-Kanca-Delivery, else the
// Standard Webhooks webhook-id, else a hash of the body.
function kanca_receive(): array
{
    if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
        kanca_respond(405, ['error' => 'POST a webhook here'], ['Allow: POST']);
    }
    if (!kanca_check_basic(kanca_env('KANCA_HOOK_USER'), kanca_env('KANCA_HOOK_PASSWORD'))) {
        kanca_respond(401, ['error' => 'wrong or missing credentials'], ['WWW-Authenticate: Basic realm="kanca webhooks"']);
    }
    $raw = (string)file_get_contents('php://input');
    $secret = kanca_env('KANCA_HOOK_SECRET');
    if ($secret !== '') {
        $why = kanca_verify_signature($secret, $raw);
        if ($why !== '') {
            kanca_respond(401, ['error' => 'bad signature: ' . $why]);
        }
    }
    $ev = kanca_parse_body($raw);
    if ($ev === null) {
        kanca_respond(400, ['error' => 'not a webhook: want a JSON or form body with event_type and uuid']);
    }
    $delivery = kanca_header('X-Kanca-Delivery');
    if ($delivery === '') {
        $delivery = kanca_header('webhook-id');
    }
    if ($delivery === '') {
        $delivery = 'sha256:' . hash('sha256', $raw);
    }
    return [$ev, $raw, $delivery];
}
