package main

import "github.com/spf13/cobra"

func newRevokeCmd() *cobra.Command { return notYet("revoke") }
