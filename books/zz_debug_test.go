package books_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanca/kanca/books"
)

func TestZZ(t *testing.T) {
	recs := freeswitchRecordings(t)
	dir := t.TempDir()
	for _, rec := range recs {
		d := filepath.Join(dir, filepath.Base(rec.dir))
		for name := range writeXMLCDRs(t, rec, d) {
			if !strings.HasPrefix(name, "a_") {
				os.Remove(filepath.Join(d, name+".cdr.xml"))
			}
		}
	}
	got, differ := score(t, recs, func(rec recording) books.Books {
		b, _ := books.Open(filepath.Join(dir, filepath.Base(rec.dir)))
		return b
	}, jsonEstimates)
	for _, e := range got.endedDiffer {
		fmt.Println("ENDED", e)
		for _, d := range differ {
			f := strings.Fields(e)
			if strings.HasPrefix(d, f[0]+" "+f[1]+" "+f[2]) {
				fmt.Println("   ", d[:min(len(d), 700)])
			}
		}
	}
}
