// Package searchattr registers the entities' custom search attributes in a
// Temporal namespace and computes them for a pair (see
// workflows.SearchAttributeUserID).
package searchattr

import (
	"context"
	"fmt"
	"log/slog"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/fx"

	"github.com/artifactstate/artifactstate/internal/config"
	"github.com/artifactstate/artifactstate/internal/entityid"
	"github.com/artifactstate/artifactstate/workflows"
)

// Definitions are the custom search attributes and their types.
func Definitions() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		workflows.SearchAttributeUserID.GetName():         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.SearchAttributeArtifactID.GetName():     enumspb.INDEXED_VALUE_TYPE_INT,
		workflows.SearchAttributeHistoryVersion.GetName(): enumspb.INDEXED_VALUE_TYPE_INT,
	}
}

// ForPair are the search attributes an entity starts with. The history
// version is not among them (history version 5 on): which code runs an
// entity is decided by the worker that runs it, and Worker Versioning's
// TemporalWorkerDeploymentVersion names that build (see
// workflows.SearchAttributeHistoryVersion).
func ForPair(key entityid.Key) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		workflows.SearchAttributeUserID.ValueSet(key.UserID),
		workflows.SearchAttributeArtifactID.ValueSet(key.ArtifactID),
	)
}

// Register adds the search attributes the namespace lacks; it returns the
// names it added. An attribute registered with another type is an error.
func Register(ctx context.Context, c client.Client, namespace string) ([]string, error) {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list the search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range Definitions() {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return nil, fmt.Errorf("search attribute %s of namespace %s is %s, want %s", name, namespace, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	}); err != nil {
		return nil, fmt.Errorf("add search attributes to namespace %s: %w", namespace, err)
	}
	var added []string
	for name := range missing {
		added = append(added, name)
	}
	return added, nil
}

// Module registers the search attributes when the app starts (the dev role:
// production registers them with `artifactstate migrate`), when
// temporal.searchAttributes is on.
var Module = fx.Module("searchattr",
	fx.Invoke(func(lc fx.Lifecycle, c client.Client, cfg config.Temporal, logger *slog.Logger) {
		if !cfg.SearchAttributes {
			return
		}
		lc.Append(fx.StartHook(func(ctx context.Context) error {
			added, err := Register(ctx, c, cfg.Namespace)
			if err != nil {
				return err
			}
			if len(added) > 0 {
				logger.Info("Registered search attributes", "namespace", cfg.Namespace, "added", added)
			}
			return nil
		}))
	}),
)
