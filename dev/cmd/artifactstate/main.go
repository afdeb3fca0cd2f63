// Command artifactstate is the development binary (bin/artifactstate): every
// command of the production binary plus those that embed a Temporal server:
// dev (everything in one process, what `make run` starts), bench and
// record-histories.
package main

import "github.com/artifactstate/artifactstate/internal/cli"

func main() { cli.Main(newDevCommand(), newBenchCommand(), newRecordHistoriesCommand()) }
