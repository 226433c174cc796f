<?php
// The CRM's storage: every delivery once, and one row per call that the
// events fill in as they arrive. SQLite through PDO (Debian: php-sqlite3).
//
//   KANCA_CRM_DB  the SQLite file (default: kanca-crm.sqlite in the system's
//                 temporary directory). Keep it out of the document root:
//                 a web server would hand it out.

declare(strict_types=1);

require_once __DIR__ . '/../kanca_webhook.php';

const CRM_SCHEMA = <<<'SQL'
CREATE TABLE IF NOT EXISTS events (
    delivery_id  TEXT PRIMARY KEY,          -- X-Kanca-Delivery: a redelivery repeats it
    call_uuid    TEXT NOT NULL,
    event_type   TEXT NOT NULL,             -- as the hook spelled it
    timestamp_us INTEGER,                   -- the event's microseconds since the epoch
    destination  TEXT,                      -- routing events only
    content_type TEXT NOT NULL,
    body         TEXT NOT NULL,             -- exactly as received
    received_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_call ON events (call_uuid);
CREATE TABLE IF NOT EXISTS calls (
    uuid               TEXT PRIMARY KEY,
    direction          TEXT NOT NULL DEFAULT '',
    caller             TEXT NOT NULL DEFAULT '',
    callee             TEXT NOT NULL DEFAULT '',
    call_type          TEXT NOT NULL DEFAULT 'voice',
    started_us         INTEGER,             -- the earliest event's time
    call_time          TEXT,                -- from here on: the CDR
    answer_time        TEXT,
    hangup_time        TEXT,
    hangup_cause       TEXT,
    disposition        TEXT,                -- sip_hangup_disposition
    result_disposition TEXT,
    talk_duration      INTEGER,
    missed             INTEGER NOT NULL DEFAULT 0,
    routes             TEXT NOT NULL DEFAULT '[]', -- routing events: [{"event":..,"destination":..}]
    callflow           TEXT NOT NULL DEFAULT '[]', -- the CDR's callflow, normalised
    last_event         TEXT NOT NULL DEFAULT '',
    updated_at         TEXT NOT NULL
);
SQL;

function crm_db(): PDO
{
    $path = kanca_env('KANCA_CRM_DB', sys_get_temp_dir() . '/kanca-crm.sqlite');
    $db = new PDO('sqlite:' . $path, null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    $db->exec('PRAGMA busy_timeout = 5000');
    $db->exec('PRAGMA journal_mode = WAL');
    $db->exec(CRM_SCHEMA);
    return $db;
}

// A value that may be absent, null or '' (form) as text or null.
function crm_opt(mixed $v): ?string
{
    $s = kanca_str($v);
    return $s === '' ? null : $s;
}

// The callflow with every value as text and null for "none", so JSON and
// form bodies store the same thing.
function crm_callflow(mixed $flow): array
{
    $out = [];
    foreach (is_array($flow) ? $flow : [] as $step) {
        if (!is_array($step)) {
            continue;
        }
        $s = [
            'callee' => kanca_str($step['callee'] ?? null),
            'start_time' => crm_opt($step['start_time'] ?? null),
            'answer_time' => crm_opt($step['answer_time'] ?? null),
            'hangup_time' => crm_opt($step['hangup_time'] ?? null),
            'redirection' => kanca_str($step['redirection'] ?? null),
        ];
        $target = crm_opt($step['redirection_target'] ?? null);
        if ($target !== null) {
            $s['redirection_target'] = $target;
        }
        $out[] = $s;
    }
    return $out;
}

// Stores one delivery. Returns false, changing nothing, when this delivery
// id was stored before.
function crm_store(PDO $db, array $ev, string $raw, string $contentType, string $delivery): bool
{
    $type = kanca_event_type($ev);
    $uuid = kanca_str($ev['uuid']);
    $ts = crm_opt($ev['timestamp'] ?? null);
    $now = gmdate('Y-m-d\TH:i:s\Z');

    $db->exec('BEGIN IMMEDIATE');
    try {
        $ins = $db->prepare('INSERT OR IGNORE INTO events
            (delivery_id, call_uuid, event_type, timestamp_us, destination, content_type, body, received_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
        $ins->execute([$delivery, $uuid, kanca_str($ev['event_type']), $ts === null ? null : (int)$ts,
            crm_opt($ev['destination'] ?? null), $contentType, $raw, $now]);
        if ($ins->rowCount() === 0) {
            $db->exec('COMMIT');
            return false;
        }

        $get = $db->prepare('SELECT * FROM calls WHERE uuid = ?');
        $get->execute([$uuid]);
        $call = $get->fetch(PDO::FETCH_ASSOC) ?: [
            'uuid' => $uuid, 'direction' => '', 'caller' => '', 'callee' => '', 'call_type' => 'voice',
            'started_us' => null, 'call_time' => null, 'answer_time' => null, 'hangup_time' => null,
            'hangup_cause' => null, 'disposition' => null, 'result_disposition' => null,
            'talk_duration' => null, 'missed' => 0, 'routes' => '[]', 'callflow' => '[]', 'last_event' => '',
        ];
        // call_init names the parties; any event fills them in when it came first.
        foreach (['direction', 'caller', 'callee'] as $f) {
            $v = kanca_str($ev[$f] ?? null);
            if ($v !== '' && ($call[$f] === '' || $type === 'call_init')) {
                $call[$f] = $v;
            }
        }
        if ($ts !== null && ($call['started_us'] === null || (int)$ts < (int)$call['started_us'])) {
            $call['started_us'] = (int)$ts;
        }
        switch ($type) {
            case 'fax_init':
                $call['call_type'] = 'fax';
                break;
            case 'call_init_extension':
            case 'call_init_group':
            case 'call_init_menu':
                $routes = json_decode($call['routes'], true) ?: [];
                $routes[] = ['event' => $type, 'destination' => kanca_str($ev['destination'] ?? null)];
                $call['routes'] = json_encode($routes, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
                break;
            case 'missing_call':
                $call['missed'] = 1;
                // A missed call carries the same CDR as its call_hangup.
            case 'call_hangup':
                $cdr = is_array($ev['cdr'] ?? null) ? $ev['cdr'] : [];
                if (($t = crm_opt($cdr['bf_calltype'] ?? null)) !== null) {
                    $call['call_type'] = $t;
                }
                $call['call_time'] = crm_opt($cdr['call_time'] ?? null);
                $call['answer_time'] = crm_opt($cdr['answer_time'] ?? null);
                $call['hangup_time'] = crm_opt($cdr['hangup_time'] ?? null);
                $call['hangup_cause'] = crm_opt($ev['hangup_cause'] ?? $cdr['hangup_cause'] ?? null);
                $call['disposition'] = crm_opt($cdr['sip_hangup_disposition'] ?? $ev['hangup_detail'] ?? null);
                $call['result_disposition'] = kanca_str($ev['result_disposition'] ?? null);
                $talk = crm_opt($ev['talk_duration'] ?? null);
                $call['talk_duration'] = $talk === null ? null : (int)$talk;
                $call['callflow'] = json_encode(crm_callflow($cdr['callflow'] ?? []), JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
                break;
        }
        $call['last_event'] = $type;
        $call['updated_at'] = $now;

        $cols = array_keys($call);
        $put = $db->prepare('INSERT OR REPLACE INTO calls (' . implode(', ', $cols) . ') VALUES ('
            . implode(', ', array_fill(0, count($cols), '?')) . ')');
        $put->execute(array_values($call));
        $db->exec('COMMIT');
        return true;
    } catch (Throwable $e) {
        $db->exec('ROLLBACK');
        throw $e;
    }
}

// The latest calls, newest first, with their decoded routes and callflow.
function crm_calls(PDO $db, int $limit = 200): array
{
    $q = $db->prepare('SELECT c.*, (SELECT COUNT(*) FROM events e WHERE e.call_uuid = c.uuid) AS events
        FROM calls c ORDER BY c.started_us DESC, c.uuid LIMIT ?');
    $q->execute([$limit]);
    $calls = [];
    foreach ($q->fetchAll(PDO::FETCH_ASSOC) as $c) {
        $c['routes'] = json_decode($c['routes'], true) ?: [];
        $c['callflow'] = json_decode($c['callflow'], true) ?: [];
        $c['missed'] = (bool)$c['missed'];
        $calls[] = $c;
    }
    return $calls;
}
