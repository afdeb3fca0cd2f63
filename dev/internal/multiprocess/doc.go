// Package multiprocess tests the service as it runs in production: the real
// binary in separate OS processes (three workers, two api nodes) against one
// Temporal server and one Cassandra. It has no non-test code.
package multiprocess
