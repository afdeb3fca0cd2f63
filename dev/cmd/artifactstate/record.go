package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"

	"github.com/artifactstate/artifactstate/dev/internal/record"
	"github.com/artifactstate/artifactstate/internal/payloadcrypt"
)

func newRecordHistoriesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "record-histories",
		Short: "Regenerate the replay corpus: run every entity scenario on an embedded Temporal server and save the histories",
		Long: `Runs every scenario of the entity workflow (each command, repeated commands, a
never-written entity, continue-as-new chains, projection retries and rejections,
cancellation, termination and re-creation) against an in-memory embedded Temporal
server, and writes each run's history to --out as v<HistoryVersion>-<scenario>.json.gz.
Files of earlier versions are left alone: the corpus keeps every version that shipped.`,
		Args: cobra.NoArgs,
	}
	out := cmd.Flags().String("out", "replaytests/testdata", "directory of the corpus")
	keysFile := cmd.Flags().String("encryption-keys-file", "", "encrypt the payloads with these keys (the encrypted corpus: replaytests/testdata/encrypted)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
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
