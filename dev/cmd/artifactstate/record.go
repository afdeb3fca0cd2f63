package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"

	"github.com/artifactstate/artifactstate/dev/internal/record"
	"github.com/artifactstate/artifactstate/dev/internal/upgrade"
	"github.com/artifactstate/artifactstate/internal/cli"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
	"github.com/artifactstate/artifactstate/workflows"
)

func newRecordHistoriesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "record-histories",
		Short: "Regenerate the replay corpus: run every entity scenario on an embedded Temporal server and save the histories",
		Long: `Runs every scenario of the entity workflow (each command, repeated commands, a
never-written entity, continue-as-new chains, projection retries and rejections,
cancellation, termination and re-creation) against an in-memory embedded Temporal
server, and writes each run's history to --out as v<HistoryVersion>-<scenario>.json.gz.
Files of earlier versions are left alone: the corpus keeps every version that shipped.

With --production it records what production writes instead, for every release in
replaytests/releases.txt (or --release N) and for this build: each release's
development binary, built from git, runs its dev role on a file store with the
read model on a real Cassandra (--cassandra-hosts), search attributes set and
payloads encrypted where the release has them, and entities of every shape are
created through its API; every run is written to --out/v<N>/<shape>[-run<K>].json.gz.`,
		Args: cobra.NoArgs,
	}
	out := cmd.Flags().String("out", "replaytests/testdata", "directory of the corpus")
	keysFile := cmd.Flags().String("encryption-keys-file", "", "encrypt the payloads with these keys (the encrypted corpus: replaytests/testdata/encrypted)")
	production := cmd.Flags().Bool("production", false, "record production-shaped histories from every release (see above)")
	hosts := cmd.Flags().String("cassandra-hosts", "", "Cassandra of the production recording, host:port")
	only := cmd.Flags().Int("release", 0, "with --production: record only this history version (0: all)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if *production {
			if *hosts == "" {
				return fmt.Errorf("--production needs --cassandra-hosts")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Hour)
			defer cancel()
			return recordProduction(ctx, cmd, *out, cli.SplitList(*hosts), *keysFile, *only, logger)
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Minute)
		defer cancel()
		var dc converter.DataConverter
		if *keysFile != "" {
			codec, err := payloadcrypt.Load(*keysFile)
			if err != nil {
				return err
			}
			dc = payloadcrypt.DataConverter(codec)
		}
		files, err := record.RunWith(ctx, *out, logger, dc)
		for _, f := range files {
			cmd.Println("wrote", f)
		}
		return err
	}
	return cmd
}

// recordProduction records every release listed in releases.txt, built
// from git, and this build (the work tree) as the current history version.
func recordProduction(ctx context.Context, cmd *cobra.Command, out string, hosts []string, keysFile string, only int, logger *slog.Logger) error {
	repo, err := upgrade.RepoRoot(ctx, ".")
	if err != nil {
		return err
	}
	releases, err := upgrade.Releases(repo)
	if err != nil {
		return err
	}
	type target struct {
		version int
		build   func() (upgrade.Binary, error)
	}
	var targets []target
	for _, r := range releases {
		targets = append(targets, target{r.HistoryVersion, func() (upgrade.Binary, error) { return upgrade.BuildCommit(ctx, repo, r.Commit) }})
	}
	if last := releases[len(releases)-1]; last.HistoryVersion < workflows.HistoryVersion {
		targets = append(targets, target{workflows.HistoryVersion, func() (upgrade.Binary, error) {
			dir, err := os.MkdirTemp("", "artifactstate-worktree-bin-")
			if err != nil {
				return upgrade.Binary{}, err
			}
			return upgrade.BuildWorkTree(ctx, repo, dir)
		}})
	}
	for _, tg := range targets {
		if only != 0 && tg.version != only {
			continue
		}
		b, err := tg.build()
		if err != nil {
			return err
		}
		dir := filepath.Join(out, "v"+strconv.Itoa(tg.version))
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		logger.Info("Recording production-shaped histories", "historyVersion", tg.version, "binary", b.Name)
		files, err := upgrade.Record(ctx, b, upgrade.RecordOptions{OutDir: dir, CassandraHosts: hosts, KeysFile: keysFile, Logger: logger})
		for _, f := range files {
			cmd.Println("wrote", f)
		}
		if err != nil {
			return fmt.Errorf("history version %d (%s): %w", tg.version, b.Name, err)
		}
	}
	return nil
}
