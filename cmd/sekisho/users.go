package main

import "github.com/spf13/cobra"

// newUsersCmd is a placeholder until its issue lands.
func newUsersCmd() *cobra.Command { return notYet("users") }
