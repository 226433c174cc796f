<?php
// Usage: php compare.php BODY.json BODY.form
//
// Checks that a PHP receiver reading the form body (parse_str, which is how
// $_POST is filled) gets the same array as one reading the JSON body with
// json_decode($json, true). json_decode keeps integers, booleans and nulls
// while a form carries only strings, so the decoded JSON is first cast the
// way the form parser would see it: int -> decimal string, true -> "1",
// false -> "0", null -> "". Empty arrays are dropped, since no form can
// spell them. Prints "equal" and exits 0, or prints a diff and exits 1.

function normalise($v)
{
    if (is_array($v)) {
        $out = [];
        foreach ($v as $k => $x) {
            $n = normalise($x);
            if (is_array($n) && count($n) === 0) {
                continue;
            }
            $out[$k] = $n;
        }
        return $out;
    }
    if ($v === true) {
        return "1";
    }
    if ($v === false) {
        return "0";
    }
    if ($v === null) {
        return "";
    }
    if (is_float($v)) {
        // An integer too large for PHP: the form cannot match it exactly.
        return "float:" . var_export($v, true);
    }
    return (string)$v;
}

// flatten lists the leaves as "key[sub]=value" lines, in order, for the diff.
function flatten($v, $prefix, &$lines)
{
    foreach ($v as $k => $x) {
        $key = $prefix === "" ? (string)$k : $prefix . "[" . $k . "]";
        if (is_array($x)) {
            flatten($x, $key, $lines);
        } else {
            $lines[] = $key . "=" . var_export($x, true);
        }
    }
}

if ($argc !== 3) {
    fwrite(STDERR, "usage: php compare.php BODY.json BODY.form\n");
    exit(2);
}
$json = file_get_contents($argv[1]);
$form = file_get_contents($argv[2]);
if ($json === false || $form === false) {
    fwrite(STDERR, "cannot read the bodies\n");
    exit(2);
}

$decoded = json_decode($json, true);
if (json_last_error() !== JSON_ERROR_NONE) {
    echo "json_decode: ", json_last_error_msg(), "\n";
    exit(1);
}
$fromJSON = normalise($decoded);
parse_str($form, $fromForm);

if ($fromForm === $fromJSON) {
    echo "equal\n";
    exit(0);
}

$a = [];
$b = [];
flatten($fromJSON, "", $a);
flatten($fromForm, "", $b);
echo "form and JSON differ (- JSON, + form):\n";
for ($i = 0; $i < max(count($a), count($b)); $i++) {
    $x = $a[$i] ?? "(none)";
    $y = $b[$i] ?? "(none)";
    if ($x !== $y) {
        echo "- ", $x, "\n+ ", $y, "\n";
    }
}
exit(1);
