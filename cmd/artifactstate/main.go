// Command artifactstate is the production binary of the service, the one the
// container image ships: the subcommand picks the role (api, worker, migrate)
// or an operator tool (loadtest, replay, stuck). It links no Temporal server;
// the development binary (dev/cmd/artifactstate) adds the all-in-one dev role.
package main

import "github.com/artifactstate/artifactstate/internal/cli"

func main() { cli.Main() }
