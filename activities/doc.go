// Package activities holds the activities the entity workflow runs.
package activities
