// Package integration holds the end-to-end tests of the service: the real
// HTTP router, the real entity workflow and worker, and an in-process
// Temporal server (see internal/testenv). It has no non-test code.
package integration
