package cli

import (
	"context"
	"sort"
	"strconv"

	registryv1 "github.com/bmaas/bmaas/api/bmaas/registry/v1"
	"github.com/spf13/cobra"
)

func aliasCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "alias",
		Aliases: []string{"aliases"},
		Short:   "Name model versions (production, champion, ...)",
		Long: "An alias names one version of a model and can be moved atomically; NAME@ALIAS\n" +
			"works wherever a version is expected. Alias names are never all digits.",
	}
	cmd.AddCommand(aliasSetCommand(g), aliasUnsetCommand(g), aliasGetCommand(g), aliasListCommand(g))
	return cmd
}

func aliasSetCommand(g *globals) *cobra.Command {
	var expected int64
	cmd := &cobra.Command{
		Use:   "set NAME ALIAS VERSION",
		Short: "Point ALIAS at VERSION (a number, another alias or latest), creating or moving it",
		Args:  args("NAME ALIAS VERSION", 3),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkAlias(a[1]); err != nil {
				return err
			}
			if a[2] == "" {
				return usageErrorf("VERSION must not be empty")
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.SetAlias(ctx, &registryv1.SetAliasRequest{
					Model: a[0], Alias: a[1], Version: a[2], ExpectedVersion: expected})
				if err != nil {
					return err
				}
				p := g.printer(cmd.OutOrStdout())
				if p.structured() {
					return p.message(resp)
				}
				now := resp.GetModel().GetAliases()[a[1]]
				if prev := resp.GetPreviousVersion(); prev != 0 && prev != now {
					return done(g, cmd, "alias %s@%s moved from version %d to %d", a[0], a[1], prev, now)
				}
				return done(g, cmd, "alias %s@%s -> version %d", a[0], a[1], now)
			})
		},
	}
	cmd.Flags().Int64Var(&expected, "expected-version", 0,
		"only move the alias if it currently points at this version (compare and swap)")
	return cmd
}

func aliasUnsetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unset NAME ALIAS",
		Short: "Remove an alias (the version stays)",
		Args:  args("NAME ALIAS", 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkAlias(a[1]); err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.DeleteAlias(ctx, &registryv1.DeleteAliasRequest{Model: a[0], Alias: a[1]})
				if err != nil {
					return err
				}
				if p := g.printer(cmd.OutOrStdout()); p.structured() {
					return p.message(resp)
				}
				return done(g, cmd, "alias %s@%s removed", a[0], a[1])
			})
		},
	}
}

func aliasGetCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME ALIAS",
		Short: "Show the version an alias points at",
		Args:  args("NAME ALIAS", 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := checkAlias(a[1]); err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.GetAlias(ctx, &registryv1.GetAliasRequest{Model: a[0], Alias: a[1]})
				if err != nil {
					return err
				}
				return printVersion(g.printer(cmd.OutOrStdout()), resp.GetVersion())
			})
		},
	}
}

func aliasListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list NAME",
		Short: "List a model's aliases",
		Args:  args("NAME", 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client) error {
				ctx, cancel := c.call(ctx)
				defer cancel()
				resp, err := c.GetModel(ctx, &registryv1.GetModelRequest{Name: a[0]})
				if err != nil {
					return err
				}
				aliases := resp.GetModel().GetAliases()
				names := make([]string, 0, len(aliases))
				for n := range aliases {
					names = append(names, n)
				}
				sort.Strings(names)
				p := g.printer(cmd.OutOrStdout())
				if p.structured() {
					return p.message(&registryv1.Model{Name: a[0], Aliases: aliases})
				}
				t := newTable(p.w)
				t.row("ALIAS", "VERSION")
				for _, n := range names {
					t.row(n, strconv.FormatInt(aliases[n], 10))
				}
				return t.flush()
			})
		},
	}
}
