// Package clusterfault breaks the production shape on purpose: against the
// local cluster of internal/localcluster (a three-node Cassandra ring,
// Temporal's services as separate processes, two workers, two api nodes),
// it keeps writing and reading through both api nodes while, one at a
// time, it SIGKILLs and later restarts a Cassandra node, a history host,
// the matching service, a worker and an api node. It checks that no
// acknowledged write is lost, that what the clients saw is linearizable,
// and that every failed call was a 503 or 504 JSON error, and reports how
// long each fault made calls fail. It has no non-test code; scripts/test
// runs it as its own step (it needs the machine to itself for minutes).
package clusterfault
