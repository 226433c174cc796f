<?php
// Posts every kanca (Bulutfon-style) call event to a HipChat room: the
// maintained form of Bulutfon's HipChat example. It uses the HipChat v2
// room notification API, which HipChat-compatible servers still speak; for
// Slack or Mattermost use slack.php.
//
//   HIPCHAT_URL    the room's notification URL,
//                  https://HOST/v2/room/ROOM_ID_OR_NAME/notification
//   HIPCHAT_TOKEN  a room notification token (sent as a Bearer token)
//   HIPCHAT_FROM   the sender label shown in the room (default kanca)
//
// and the settings of lib.php and ../kanca_webhook.php.

declare(strict_types=1);

require __DIR__ . '/lib.php';

chat_relay(function (array $msg): string {
    $headers = [];
    $token = kanca_env('HIPCHAT_TOKEN');
    if ($token !== '') {
        $headers[] = 'Authorization: Bearer ' . $token;
    }
    return chat_post('hipchat', kanca_env('HIPCHAT_URL'), [
        'from' => kanca_env('HIPCHAT_FROM', 'kanca'),
        'message' => $msg['text'],
        'message_format' => 'text',
        'color' => $msg['color'],
        'notify' => $msg['notify'],
    ], $headers);
});
