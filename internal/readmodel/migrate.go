package readmodel

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/artifactstate/artifactstate/internal/config"
)

// The schema is versioned CQL files, schema/NNN_name.cql, applied in order
// and recorded in schema_migrations. Each statement must be idempotent (IF
// NOT EXISTS), so two migrators racing each other are harmless.
//
//go:embed schema/*.cql
var schemaFiles embed.FS

// Migration is one schema file.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the embedded schema files in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(schemaFiles, "schema/*.cql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("schema file %s: name must be NNN_description.cql", base)
		}
		if other, dup := seen[version]; dup {
			return nil, fmt.Errorf("schema files %s and %s share version %d", other, base, version)
		}
		seen[version] = base
		raw, err := schemaFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: version, Name: base, Statements: splitStatements(string(raw))})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// splitStatements splits CQL on ';' at line ends, dropping "--" comments.
func splitStatements(cql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(cql, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimRight(line, " \t\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(line, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// KeyspaceCQL is the CREATE KEYSPACE statement for cfg. DDL takes no bound
// parameters; every value in it was validated by config.Validate.
func KeyspaceCQL(cfg config.Cassandra) string {
	r := cfg.Replication
	var repl string
	if r.Class == "NetworkTopologyStrategy" {
		parts := []string{"'class': 'NetworkTopologyStrategy'"}
		for _, dc := range slices.Sorted(maps.Keys(r.Datacenters)) {
			parts = append(parts, fmt.Sprintf("'%s': %d", dc, r.Datacenters[dc]))
		}
		repl = strings.Join(parts, ", ")
	} else {
		repl = fmt.Sprintf("'class': 'SimpleStrategy', 'replication_factor': %d", r.ReplicationFactor)
	}
	return fmt.Sprintf("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {%s}", cfg.Keyspace, repl)
}

// Migrate creates the keyspace if missing and applies the schema files not
// yet recorded in it. It is what `artifactstate migrate` runs; dev mode runs
// it at start.
func Migrate(ctx context.Context, cfg config.Cassandra, logger *slog.Logger) error {
	migrations, err := Migrations()
	if err != nil {
		return err
	}
	admin, err := newCluster(cfg, "").CreateSession()
	if err != nil {
		return classify(fmt.Errorf("connect to Cassandra %v: %w", cfg.Hosts, err))
	}
	defer admin.Close()
	if err := execDDL(ctx, admin, KeyspaceCQL(cfg)); err != nil {
		return fmt.Errorf("create keyspace %s: %w", cfg.Keyspace, err)
	}
	session, err := newCluster(cfg, cfg.Keyspace).CreateSession()
	if err != nil {
		return classify(fmt.Errorf("connect to keyspace %s: %w", cfg.Keyspace, err))
	}
	defer session.Close()
	if err := execDDL(ctx, session, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text, applied_at timestamp)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	iter := session.Query("SELECT version FROM schema_migrations").IterContext(ctx)
	var v int
	for iter.Scan(&v) {
		applied[v] = true
	}
	if err := iter.Close(); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range m.Statements {
			if err := execDDL(ctx, session, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
		}
		if err := session.Query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now()).ExecContext(ctx); err != nil {
			return fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		logger.Info("Applied read-model migration", "keyspace", cfg.Keyspace, "migration", m.Name)
	}
	logger.Info("Read-model schema up to date", "keyspace", cfg.Keyspace, "version", migrations[len(migrations)-1].Version)
	return nil
}

func execDDL(ctx context.Context, s *gocql.Session, stmt string) error {
	if err := s.Query(stmt).ExecContext(ctx); err != nil {
		return classify(err)
	}
	// Later statements and other nodes must see the change.
	return s.AwaitSchemaAgreement(ctx)
}
