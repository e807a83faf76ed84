package main

import "github.com/spf13/cobra"

// newAuditCmd is a placeholder until its issue lands.
func newAuditCmd() *cobra.Command { return notYet("audit") }
