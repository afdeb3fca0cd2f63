package upgrade

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"go.temporal.io/api/history/v1"

	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/internal/histories"
)

// RecordOptions say where a production-shaped recording runs.
type RecordOptions struct {
	// OutDir receives <shape>[-run<N>].json.gz for every run of every entity.
	OutDir         string
	CassandraHosts []string
	// KeysFile encrypts the payloads (a release without payload encryption
	// ignores it).
	KeysFile string
	Logger   *slog.Logger
}

// Record records the histories of a release as production writes them: its
// dev role (embedded Temporal on a file store, its own worker, the read
// model on a real Cassandra, search attributes registered and set,
// encrypted payloads where the release has them) serves the entities of
// every shape the release can make, created through its API; then every
// run of every entity is saved.
func Record(ctx context.Context, b Binary, opts RecordOptions) ([]string, error) {
	dir, err := os.MkdirTemp("", "artifactstate-record-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	keyspace := fmt.Sprintf("record_%d", time.Now().UnixNano())
	defer func() {
		if err := DropKeyspace(opts.CassandraHosts, keyspace); err != nil {
			opts.Logger.Warn("Drop the recording's keyspace", "error", err)
		}
	}()
	s, err := NewStack(StackOptions{Dir: dir, CassandraHosts: opts.CassandraHosts, Keyspace: keyspace,
		KeysFile: opts.KeysFile, HistoryBudget: 100})
	if err != nil {
		return nil, err
	}
	defer s.StopAll()
	dev, err := s.Dev(b, "dev-"+b.Name, true)
	if err != nil {
		return nil, err
	}
	if err := dev.Start(ctx); err != nil {
		return nil, err
	}
	c, err := s.Client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d, err := NewDriver(ctx, s.API, c, &ReadModelFault{Hosts: opts.CassandraHosts, Keyspace: keyspace})
	if err != nil {
		return nil, err
	}
	if err := d.CreateShapes(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name, err)
	}
	if err := d.Check(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name, err)
	}
	if err := settle(ctx, d); err != nil {
		return nil, err
	}
	var files []string
	for _, e := range d.Entities {
		if !e.Written {
			continue
		}
		runs, err := runsOldestFirst(ctx, d, e.Key)
		if err != nil {
			return files, err
		}
		for i, h := range runs {
			name := e.Shape
			if len(runs) > 1 {
				name += "-run" + strconv.Itoa(i+1)
			}
			path := filepath.Join(opts.OutDir, name+".json.gz")
			if err := histories.Save(path, h); err != nil {
				return files, err
			}
			files = append(files, path)
		}
	}
	return files, dev.Stop(30 * time.Second)
}

// settle waits until no entity has a workflow task or activity pending, so
// the saved histories end where running entities rest.
func settle(ctx context.Context, d *Driver) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, k := range d.OpenKeys() {
		for {
			desc, err := d.Temporal.DescribeWorkflowExecution(ctx, k.WorkflowID(), "")
			if err != nil {
				return err
			}
			if desc.GetPendingWorkflowTask() == nil && len(desc.GetPendingActivities()) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s did not settle: %w", k, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// runsOldestFirst fetches every run of the workflow ID, in start order.
func runsOldestFirst(ctx context.Context, d *Driver, key entityid.Key) ([]*history.History, error) {
	ids, err := allRunIDs(ctx, d.Temporal, key)
	if err != nil {
		return nil, err
	}
	var runs []*history.History
	for _, id := range ids {
		events, err := runEvents(ctx, d.Temporal, key, id)
		if err != nil {
			return nil, err
		}
		runs = append(runs, &history.History{Events: events})
	}
	slices.SortFunc(runs, func(a, b *history.History) int {
		return a.GetEvents()[0].GetEventTime().AsTime().Compare(b.GetEvents()[0].GetEventTime().AsTime())
	})
	return runs, nil
}

// DropKeyspace drops a read-model keyspace of a stack.
func DropKeyspace(hosts []string, keyspace string) error {
	c := gocql.NewCluster(hosts...)
	c.Timeout = 30 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		return fmt.Errorf("drop keyspace %s: %w", keyspace, err)
	}
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec(); err != nil {
		return fmt.Errorf("drop keyspace %s: %w", keyspace, err)
	}
	return nil
}
