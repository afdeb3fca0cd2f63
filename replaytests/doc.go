// Package replaytests replays recorded histories of the entity workflow
// against the current code, so a change that would break running entities
// fails CI.
package replaytests
