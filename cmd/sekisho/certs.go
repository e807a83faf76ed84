package main

import "github.com/spf13/cobra"

// newCertsCmd is a placeholder until its issue lands.
func newCertsCmd() *cobra.Command { return notYet("certs") }
