package localcassandra

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// LogTail keeps the last n lines, only those after the last start marker,
// and says why when there is no log.
func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	log := "\n=== start 1\nold a\nold b\n\n=== start 2\nnew a\nnew b\nnew c\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := LogTail(path, 1<<10, 2, ""), "new b\nnew c"; got != want {
		t.Errorf("last 2 lines: %q, want %q", got, want)
	}
	if got, want := LogTail(path, 1<<10, 30, "=== "), "=== start 2\nnew a\nnew b\nnew c"; got != want {
		t.Errorf("since the last start: %q, want %q", got, want)
	}
	if got, want := LogTail(path, 8, 30, ""), "b\nnew c"; got != want {
		t.Errorf("only the last 8 bytes read: %q, want %q", got, want)
	}
	if got := LogTail(filepath.Join(t.TempDir(), "none.log"), 1<<10, 3, ""); !strings.HasPrefix(got, "(no log: ") {
		t.Errorf("missing file: %q", got)
	}
}
