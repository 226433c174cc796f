<?php
// Posts every kanca (Bulutfon-style) call event to a Slack or Mattermost
// channel through an incoming webhook; both take {"text": ...}.
//
//   SLACK_WEBHOOK_URL  the incoming webhook's URL
//
// and the settings of lib.php and ../kanca_webhook.php.

declare(strict_types=1);

require __DIR__ . '/lib.php';

const SLACK_ICONS = [
    'call_init_IN' => ':telephone_receiver:',
    'call_init_OUT' => ':telephone_receiver:',
    'call_init_extension' => ':arrow_right:',
    'call_init_group' => ':busts_in_silhouette:',
    'call_init_menu' => ':1234:',
    'fax_init' => ':fax:',
    'call_hangup' => ':white_check_mark:',
    'call_hangup_unanswered' => ':x:',
    'call_hangup_fax' => ':fax:',
    'missing_call' => ':warning:',
];

chat_relay(function (array $msg): string {
    return chat_post('slack', kanca_env('SLACK_WEBHOOK_URL'), [
        'text' => SLACK_ICONS[$msg['kind']] . ' ' . $msg['text'],
    ]);
});
