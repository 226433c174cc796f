//go:build race

package main

// The binary under test gets the race detector the tests run with.
func init() { buildFlags = append(buildFlags, "-race") }
