package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/images"
	"github.com/sluicehq/sluice/sandbox"
	ctrd "github.com/sluicehq/sluice/sandbox/containerd"
)

func newImageCmd() *cobra.Command {
	var rf runtimeFlags
	c := &cobra.Command{
		Use:   "image",
		Short: "Build, import and list job images (no registry needed)",
	}
	rf.register(c)
	c.AddCommand(newImageBuildCmd(&rf), newImageImportCmd(&rf), newImageListCmd(&rf))
	return c
}

func newImageBuildCmd(rf *runtimeFlags) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "build DIR",
		Short: "Build an image from images/<name>/image.yaml and import it into containerd",
		Long: `Builds the image offline from Debian packages (debootstrap, or Debian's static
busybox) into an OCI image with go-containerregistry, caches the tarball under
--cache-dir/images keyed by the definition's content, and imports it into containerd
under the image's name. A rebuild with nothing changed reuses the cache and is
instant.`,
		Example: "  sluice image build images/busybox\n  sluice image build images/python",
		Args:    exactArgs(1, "one DIR"),
		RunE: func(c *cobra.Command, args []string) error {
			return rf.withExecutor(c, output, func(exe *ctrd.Executor) error {
				ctx := namespaced(c, exe.Namespace())
				log := rf.logger(c.ErrOrStderr())
				b, err := images.Ensure(ctx, exe.Client(), args[0], filepath.Join(rf.cacheDir, "images"), "overlayfs", log)
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(c.OutOrStdout(), b)
				}
				how := "built"
				if b.Cached {
					how = "cached"
				}
				fmt.Fprintf(c.OutOrStdout(), "%s %s %s\n", b.Name, b.Digest, how)
				return nil
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

func newImageImportCmd(rf *runtimeFlags) *cobra.Command {
	var name, output string
	c := &cobra.Command{
		Use:     "import TAR",
		Short:   "Import an OCI or Docker image tarball built elsewhere",
		Example: "  sluice image import python-pyarrow.oci.tar --name python-pyarrow",
		Args:    exactArgs(1, "one TAR"),
		RunE: func(c *cobra.Command, args []string) error {
			return rf.withExecutor(c, output, func(exe *ctrd.Executor) error {
				imgs, err := images.Import(namespaced(c, exe.Namespace()), exe.Client(), args[0], name, "overlayfs")
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(c.OutOrStdout(), imgs)
				}
				for _, i := range imgs {
					fmt.Fprintf(c.OutOrStdout(), "%s %s imported\n", i.Name, i.Digest)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&name, "name", "", "image name when the tarball carries none")
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

func newImageListCmd(rf *runtimeFlags) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "list",
		Short: "List imported images with their digests",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return rf.withExecutor(c, output, func(exe *ctrd.Executor) error {
				imgs, err := images.List(namespaced(c, exe.Namespace()), exe.Client())
				if err != nil {
					return err
				}
				if output == "json" {
					if imgs == nil {
						imgs = []images.Imported{}
					}
					return writeJSON(c.OutOrStdout(), imgs)
				}
				tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tDIGEST\tSIZE")
				for _, i := range imgs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", i.Name, i.Digest, sandbox.FormatBytes(i.Size))
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}
