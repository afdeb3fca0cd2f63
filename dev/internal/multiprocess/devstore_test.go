package multiprocess

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver Temporal's SQLite plugin uses

	"github.com/artifactstate/artifactstate/dev/internal/devserver"
	"github.com/artifactstate/artifactstate/dev/internal/testenv"
)

// The dev role's store is what the README says: SQLite in WAL mode with
// synchronous=NORMAL, read back from the live database file; and every write
// the API acknowledged survives a SIGKILL of the process.
func TestDevStoreIsWALAndSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	api, frontend := testenv.FreePort(t), testenv.FreePort(t)
	env := []string{
		"ARTIFACTSTATE_API_LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(api),
		"ARTIFACTSTATE_DEV_FRONTEND_PORT=" + strconv.Itoa(frontend),
		"ARTIFACTSTATE_DEV_UI_PORT=0",
		"ARTIFACTSTATE_ADMIN_LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"ARTIFACTSTATE_DEV_DATA_DIR=" + dataDir,
	}
	p := start(t, "dev", "dev", env, api)
	dbFile := filepath.Join(dataDir, "temporal.db")

	// journal_mode is stored in the database file: a second connection sees
	// what the server's connections set.
	live, err := sql.Open("sqlite", "file:"+dbFile)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	var mode string
	if err := live.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode of the live database is %q, want wal", mode)
	}
	// synchronous and busy_timeout belong to each connection: open one with
	// the attributes the server's connections get, as Temporal's SQLite
	// plugin passes them (an attribute SQLite does not know is ignored, and
	// the value would read back as the default).
	q := url.Values{}
	for k, v := range devserver.FilePragmas {
		q.Add("_pragma", k+"="+v)
	}
	conn, err := sql.Open("sqlite", "file:"+dbFile+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var synchronous, busy int
	if err := conn.QueryRow("PRAGMA synchronous").Scan(&synchronous); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if synchronous != 1 || busy != 10000 {
		t.Fatalf("synchronous=%d busy_timeout=%d, want 1 (NORMAL) and 10000", synchronous, busy)
	}

	// A new store keeps only the visibility indexes something here queries
	// by, and those of the slots the service's own search attributes took
	// (one keyword: the user; two ints: the artifact and the history
	// version; Temporal picks the slots at random).
	rows, err := live.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var indexes, slots []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(name, "by_keyword_") || strings.HasPrefix(name, "by_int_") {
			slots = append(slots, strings.TrimRight(name, "0123456789"))
		} else {
			indexes = append(indexes, name)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	want := devserver.VisibilityIndexesKept(nil)
	slices.Sort(slots)
	if !slices.Equal(indexes, want) || !slices.Equal(slots, []string{"by_int_", "by_int_", "by_keyword_"}) {
		t.Fatalf("the live store's visibility indexes are\n%v and custom slots %v\nwant\n%v and one keyword, two int slots", indexes, slots, want)
	}

	const pairs = 50
	for i := range pairs {
		for _, cmd := range []string{"setArtifactAddedToUserFeed", "setArtifactReadByUser"} {
			r, err := call("POST", p.url+"/artifactState/"+cmd, pair(int64(i), "durable"))
			if err != nil || r.body != `{"success":true}` {
				t.Fatalf("write %d: %d %q %v", i, r.status, r.body, err)
			}
		}
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not die within 30s of SIGKILL")
	}

	p = start(t, "dev-restarted", "dev", env, api)
	for i := range pairs {
		want := fmt.Sprintf(`{"artifactId":%d,"artifactInUserFeed":true,"artifactRead":true,"userId":"durable"}`, i)
		r, err := call("GET", p.url+"/artifactState/getAllStates"+query(int64(i), "durable"), "")
		if err != nil || r.body != want {
			t.Fatalf("after SIGKILL, pair %d reads %d %q %v, want %s", i, r.status, r.body, err, want)
		}
	}
}
