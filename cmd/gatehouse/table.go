package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/table"
)

// tableCmd mirrors the original's `azure mobile table create|list|show|update|delete` (and
// `azure mobile data truncate` as `table truncate`).
func tableCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gatehouse table create|list|show|update|delete|truncate", errUsage)
	}
	sub, args := args[0], args[1:]
	var (
		integerID, softDelete, perUser, asJSON, yes bool
		columns, perms, dynamic, softDeleteStr, idx string
	)
	cfg, fs, err := loadConfigArgs("table "+sub, args, stderr, getenv, func(fs *flag.FlagSet) {
		switch sub {
		case "create":
			fs.BoolVar(&integerID, "integer-id", false, "integer ids assigned by the server (default: string ids)")
			fs.BoolVar(&softDelete, "soft-delete", false, "keep deleted rows, flagged deleted")
			fs.BoolVar(&perUser, "per-user", false, "stamp the caller's user id on insert and limit every operation to the caller's rows")
		case "update":
			fs.StringVar(&softDeleteStr, "soft-delete", "", "true or false")
		}
		if sub == "create" || sub == "update" {
			fs.StringVar(&columns, "columns", "", "declared columns: title=string,year=number,released=date,seen=boolean")
			fs.StringVar(&perms, "permissions", "", "read=public,insert=application,update=user,delete=admin (also *=...)")
			fs.StringVar(&dynamic, "dynamic-schema", "", "true or false (default: the dynamic_schema setting)")
			fs.StringVar(&idx, "index", "", "indexes, comma separated; an index on several columns joins them with + (e.g. title,year+title: reads filtering on year and ordering by title walk the second)")
		}
		if sub == "list" || sub == "show" {
			fs.BoolVar(&asJSON, "json", false, "print JSON")
		}
		if sub == "delete" {
			fs.BoolVar(&yes, "yes", false, "confirm: the table and all its rows are deleted")
		}
		if sub == "truncate" {
			fs.BoolVar(&yes, "yes", false, "confirm: all the table's rows are deleted (integer ids restart at 1)")
		}
	})
	if err != nil {
		return err
	}
	db, err := openAdminDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := tableService(ctx, cfg, db)
	if err != nil {
		return err
	}
	// Running servers reload the catalogue as soon as this command changes it.
	n, _, err := newNotifier(ctx, cfg, db, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	svc.Notify(n)
	name := ""
	if sub != "list" {
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: gatehouse table %s NAME", errUsage, sub)
		}
		name = fs.Arg(0)
	} else if fs.NArg() != 0 {
		return fmt.Errorf("%w: gatehouse table list takes no arguments", errUsage)
	}
	spec := func() (table.Spec, error) {
		req := table.SpecRequest{Name: name}
		for _, c := range strings.Split(idx, ",") {
			if c = strings.TrimSpace(c); c != "" {
				req.Indexes = append(req.Indexes, c)
			}
		}
		var err error
		if req.Columns, err = table.ParseAssignments(columns); err != nil {
			return table.Spec{}, fmt.Errorf("%w: --columns: %v", errUsage, err)
		}
		if req.Permissions, err = table.ParseAssignments(perms); err != nil {
			return table.Spec{}, fmt.Errorf("%w: --permissions: %v", errUsage, err)
		}
		if dynamic != "" {
			b, err := strconv.ParseBool(dynamic)
			if err != nil {
				return table.Spec{}, fmt.Errorf("%w: --dynamic-schema must be true or false", errUsage)
			}
			req.DynamicSchema = &b
		}
		if sub == "create" {
			if integerID {
				req.IDType = "integer"
			}
			req.SoftDelete, req.PerUser = &softDelete, &perUser
		} else if softDeleteStr != "" {
			b, err := strconv.ParseBool(softDeleteStr)
			if err != nil {
				return table.Spec{}, fmt.Errorf("%w: --soft-delete must be true or false", errUsage)
			}
			req.SoftDelete = &b
		}
		return req.Spec()
	}
	switch sub {
	case "create", "update":
		sp, err := spec()
		if err != nil {
			return err
		}
		var s *table.Schema
		if sub == "create" {
			s, err = svc.Create(ctx, sp)
		} else {
			s, err = svc.Update(ctx, sp)
		}
		if err != nil {
			return err
		}
		printTable(stdout, table.Describe(s))
	case "list":
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if asJSON {
			infos := make([]table.Info, 0, len(list))
			for _, s := range list {
				infos = append(infos, table.Describe(s))
			}
			return json.NewEncoder(stdout).Encode(infos)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tSOFT DELETE\tPER USER\tREAD\tINSERT\tUPDATE\tDELETE\tSOURCE")
		for _, s := range list {
			in := table.Describe(s)
			fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.IDType, in.SoftDelete, in.PerUser,
				in.Permissions["read"], in.Permissions["insert"], in.Permissions["update"], in.Permissions["delete"], in.Source)
		}
		return tw.Flush()
	case "show":
		s, err := svc.Lookup(ctx, name)
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		if asJSON {
			return json.NewEncoder(stdout).Encode(table.Describe(s))
		}
		printTable(stdout, table.Describe(s))
	case "delete":
		if !yes {
			return fmt.Errorf("%w: deleting %s removes all its rows; add --yes", errUsage, name)
		}
		if err := svc.Drop(ctx, name); err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "table %s deleted\n", name)
	case "truncate":
		if !yes {
			return fmt.Errorf("%w: truncating %s removes all its rows; add --yes", errUsage, name)
		}
		n, err := svc.Truncate(ctx, name)
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "table %s truncated: %d rows deleted\n", name, n)
	default:
		return fmt.Errorf("%w: unknown table command %q", errUsage, sub)
	}
	return nil
}

// tableService is the table catalogue of an admin command (the app directory's tables included).
func tableService(ctx context.Context, cfg *config.Config, db *store.DB) (*table.Service, error) {
	app := appdir.Empty()
	if cfg.AppDir != "" {
		var err error
		if app, err = appdir.Load(cfg.AppDir); err != nil {
			return nil, err
		}
	}
	return table.NewService(ctx, table.NewSQL(db), app, tableDefaults(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func printTable(w io.Writer, in table.Info) {
	fmt.Fprintf(w, "table:          %s\nid type:        %s\nsoft delete:    %v\nper user:       %v\ndynamic schema: %v\nsource:         %s\n",
		in.Name, in.IDType, in.SoftDelete, in.PerUser, in.DynamicSchema, in.Source)
	fmt.Fprintf(w, "permissions:    read=%s insert=%s update=%s delete=%s\n", in.Permissions["read"], in.Permissions["insert"], in.Permissions["update"], in.Permissions["delete"])
	fmt.Fprintf(w, "columns:        %s\n", strings.Join(in.SortedColumns(), ", "))
}
