package localcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// registerNamespace does what compose's create-namespace.sh does with the
// temporal CLI: registers the namespace with its retention unless it
// exists, then waits until listing its workflows works (a new namespace
// takes a few seconds to reach every service's cache).
func (c *Cluster) registerNamespace(ctx context.Context) error {
	opts := client.Options{HostPort: c.FrontendAddress(), Namespace: c.dep.Namespace,
		Logger: sdklog.NewStructuredLogger(c.log.With("component", "temporal-sdk"))}
	nc, err := client.NewNamespaceClient(opts)
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        c.dep.Namespace,
		Description:                      "artifactstate entity workflows",
		WorkflowExecutionRetentionPeriod: durationpb.New(c.dep.Retention),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	switch {
	case errors.As(err, &exists):
		c.log.Info("namespace exists", "namespace", c.dep.Namespace)
	case err != nil:
		return fmt.Errorf("register namespace %s: %w", c.dep.Namespace, err)
	default:
		c.log.Info("registered namespace", "namespace", c.dep.Namespace, "retention", c.dep.Retention)
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return err
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var last error
	for {
		_, last = tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: c.dep.Namespace, PageSize: 1})
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s not usable: %w", c.dep.Namespace, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
