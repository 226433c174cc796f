<?php
// The call list: GET / shows the latest calls as HTML, GET /?format=json as
// JSON. A POST here is taken as a webhook (as hook.php does), so a hook may
// point at the site's root. Behind the hook's Basic credentials when set.

declare(strict_types=1);

require_once __DIR__ . '/lib.php';

if (($_SERVER['REQUEST_METHOD'] ?? '') === 'POST') {
    require __DIR__ . '/hook.php';
    exit;
}
if (!kanca_check_basic(kanca_env('KANCA_HOOK_USER'), kanca_env('KANCA_HOOK_PASSWORD'))) {
    header('WWW-Authenticate: Basic realm="kanca CRM"');
    http_response_code(401);
    echo "Authentication required\n";
    exit;
}
try {
    $calls = crm_calls(crm_db());
} catch (Throwable $e) {
    error_log('kanca crm: ' . $e->getMessage());
    http_response_code(500);
    echo "The call database cannot be read\n";
    exit;
}
if (($_GET['format'] ?? '') === 'json') {
    kanca_respond(200, ['calls' => $calls]);
}

function h(mixed $s): string
{
    return htmlspecialchars((string)$s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function when(array $c): string
{
    if ($c['call_time'] !== null) {
        return $c['call_time'];
    }
    return $c['started_us'] === null ? '' : date('Y-m-d\TH:i:sP', intdiv((int)$c['started_us'], 1000000));
}

function outcome(array $c): string
{
    if ($c['missed']) {
        return 'missed';
    }
    if ($c['hangup_time'] === null) {
        return 'in progress';
    }
    return $c['answer_time'] === null ? 'not answered' : 'answered';
}

// "908508850001 → ivr-main → 1000 (answered)"
function flow(array $c): string
{
    $steps = [];
    foreach ($c['callflow'] as $s) {
        $steps[] = $s['callee'] . ($s['answer_time'] !== null && !str_starts_with($s['redirection'], 'REDIRECTED_') ? ' (answered)' : '');
    }
    if ($steps === []) {
        foreach ($c['routes'] as $r) {
            $steps[] = $r['destination'];
        }
    }
    return implode(' → ', $steps);
}
?><!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Calls</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .35em .6em; text-align: left; font-size: 90%; }
tr.missed td { background: #fde8e8; }
td.num { font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1>Calls</h1>
<?php if ($calls === []): ?>
<p>No calls yet. Point a kanca hook at this site.</p>
<?php else: ?>
<table>
<thead><tr><th>Started</th><th>Direction</th><th>Caller</th><th>Callee</th><th>Type</th><th>Answered</th><th>Ended</th><th>Talk (s)</th><th>Outcome</th><th>Disposition</th><th>Callflow</th></tr></thead>
<tbody>
<?php foreach ($calls as $c): ?>
<tr class="<?= h(str_replace(' ', '-', outcome($c))) ?>" id="call-<?= h($c['uuid']) ?>">
<td><?= h(when($c)) ?></td>
<td><?= h($c['direction']) ?></td>
<td class="num"><?= h($c['caller']) ?></td>
<td class="num"><?= h($c['callee']) ?></td>
<td><?= h($c['call_type']) ?></td>
<td><?= h($c['answer_time'] ?? '') ?></td>
<td><?= h($c['hangup_time'] ?? '') ?></td>
<td class="num"><?= h($c['talk_duration'] ?? '') ?></td>
<td><?= h(outcome($c)) ?></td>
<td><?= h(trim(($c['disposition'] ?? '') . ' ' . ($c['hangup_cause'] ?? ''))) ?></td>
<td><?= h(flow($c)) ?></td>
</tr>
<?php endforeach ?>
</tbody>
</table>
<?php endif ?>
</body>
</html>
