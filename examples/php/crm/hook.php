<?php
// The webhook endpoint: point a kanca hook (JSON or form) here. Answers 200
// once the delivery is stored (also for a redelivery, stored only once),
// 401 for wrong credentials or signature, 400 for a body it cannot read and
// 500 when storing failed, so that kanca tries again.

declare(strict_types=1);

require_once __DIR__ . '/lib.php';

[$ev, $raw, $delivery] = kanca_receive();
try {
    $stored = crm_store(crm_db(), $ev, $raw, kanca_content_type(), $delivery);
} catch (Throwable $e) {
    error_log('kanca crm: storing delivery ' . $delivery . ': ' . $e->getMessage());
    kanca_respond(500, ['error' => 'could not store the event']);
}
kanca_respond(200, ['delivery' => $delivery, 'duplicate' => !$stored]);
