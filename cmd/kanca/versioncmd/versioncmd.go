// Package versioncmd is `kanca version`: which kanca this is.
package versioncmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/version"
)

// New returns the version command.
func New() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kanca's version and the revision it was built from",
		Long: `Print kanca's module version and the VCS revision it was built from (with
its time, and whether the checkout had local changes), as the build
recorded them. kanca --version prints the same; receivers see it in the
User-Agent, dashboards in kanca_build_info, logs in kanca run's first line.`,
		Example: "  kanca version\n  kanca --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Get())
			return err
		},
	}
}
