package formats

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanca/kanca/cdr"
)

// TestPHPReadsFormAsJSON runs PHP itself on both bodies of each event:
// testdata/compare.php checks that parse_str (what fills $_POST) yields the
// array json_decode($json, true) yields, once the decoded JSON's scalars are
// cast as the form parser sees them (int -> decimal string, true -> "1",
// false -> "0", null -> ""), since a form carries only strings.
func TestPHPReadsFormAsJSON(t *testing.T) {
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("php is required in CI (Debian package php-cli): %v", err)
		}
		t.Skip("php not on PATH; install php-cli to run this test")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "compare.php"))
	if err != nil {
		t.Fatal(err)
	}
	loc := istanbul(t)

	type testCase struct {
		name string
		ev   cdr.Event
		o    Options
	}
	var cases []testCase
	for _, typ := range cdr.EventTypes {
		cases = append(cases,
			testCase{string(typ) + "/plain", trickyEvent(typ), Options{Location: time.UTC}},
			testCase{string(typ) + "/options", trickyEvent(typ), fullOptions(loc)},
			testCase{string(typ) + "/strings", trickyEvent(typ), Options{Location: loc, NumbersAsStrings: true}},
		)
	}
	cases = append(cases, testCase{"spec", specEvent(), Options{Location: loc}})

	renamed := trickyEvent(cdr.CallInitExtension)
	cases = append(cases, testCase{"event name", renamed, Options{EventName: "incoming_call_extension"}})

	noRecord := trickyEvent(cdr.CallHangup)
	noRecord.CDR = nil
	cases = append(cases, testCase{"nil record", noRecord, fullOptions(loc)})

	noSteps := trickyEvent(cdr.MissingCall)
	noSteps.CDR.Callflow = nil
	noSteps.CDR.Expired = true
	cases = append(cases, testCase{"no steps", noSteps, Options{}})

	// Values that a form parser treats specially, or that JSON must repair.
	weird := trickyEvent(cdr.CallHangup)
	weird.CallID = "a.b c%41[x]=y&z;w"
	weird.Caller = "0532 000 00 00"
	weird.Callee = "1234567890123456789"
	weird.HangupCause = "line1\nline2\ttab\r\"q\" \\ é 😀"
	weird.HangupDetail = "bad\xffutf8\xc3"
	weird.CDR.CallType = "a\x00b"
	weird.CDR.Callflow[2].Redirection = "=&+%"
	cases = append(cases, testCase{"weird values", weird, fullOptions(loc)})

	// compare runs the script; it reports whether PHP saw equal arrays.
	compare := func(t *testing.T, jsonBody, formBody []byte) (bool, string) {
		t.Helper()
		dir := t.TempDir()
		jsonPath := filepath.Join(dir, "body.json")
		formPath := filepath.Join(dir, "body.form")
		if err := os.WriteFile(jsonPath, jsonBody, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(formPath, formBody, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(php, "-f", script, "--", jsonPath, formPath).CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run php: %v", err)
		}
		return err == nil && strings.TrimSpace(string(out)) == "equal", string(out)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if ok, out := compare(t, encode(t, JSON, tc.ev, tc.o), encode(t, Form, tc.ev, tc.o)); !ok {
				t.Errorf("PHP reads the bodies differently:\n%s", out)
			}
		})
	}

	jsonBody := encode(t, JSON, trickyEvent(cdr.CallHangup), fullOptions(loc))
	formBody := encode(t, Form, trickyEvent(cdr.CallHangup), fullOptions(loc))

	// kanca escapes brackets in keys as PHP's http_build_query does; PHP
	// decodes a key before splitting its brackets, so literal ones read the
	// same, and receivers may see either from other senders.
	t.Run("literal brackets", func(t *testing.T) {
		literal := strings.NewReplacer("%5B", "[", "%5D", "]").Replace(string(formBody))
		if ok, out := compare(t, jsonBody, []byte(literal)); !ok {
			t.Errorf("PHP reads literal brackets differently:\n%s", out)
		}
	})

	// The checker must be able to fail: a changed value and a list written
	// with [] instead of indexes are both caught.
	t.Run("mismatch caught", func(t *testing.T) {
		for _, bad := range []string{
			strings.Replace(string(formBody), "cdr%5Bcall_record%5D=1", "cdr%5Bcall_record%5D=0", 1),
			strings.ReplaceAll(string(formBody), "%5Bcallflow%5D%5B1%5D", "%5Bcallflow%5D%5B%5D"),
		} {
			if bad == string(formBody) {
				t.Fatal("the corruption did not apply")
			}
			if ok, out := compare(t, jsonBody, []byte(bad)); ok || !strings.Contains(out, "differ") {
				t.Errorf("compare.php accepted a wrong form body:\n%s", out)
			}
		}
	})
}
