package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/internal/table"
)

var (
	permissionLevels = []string{"public", "application", "user", "admin"}
	operations       = []string{"read", "insert", "update", "delete"}
	columnTypes      = []string{"string", "number", "boolean", "date"}
)

type schemaList struct {
	Tables []table.Info
	Levels []string
	Ops    []string
	Types  []string
}

type schemaPage struct {
	Info    table.Info
	Columns []table.Column
	Levels  []string
	Ops     []string
	Types   []string
}

// schemaError maps a table service error to a message for the administrator (the admin API's
// statuses), or "" for an error that is not the input's fault.
func schemaError(err error) string {
	var ie *table.InputError
	switch {
	case errors.As(err, &ie):
		return ie.Msg
	case errors.Is(err, table.ErrNoTable):
		return "Table does not exist."
	case errors.Is(err, table.ErrExists):
		return "A table with that name already exists."
	}
	return ""
}

// schema routes /schema (list and create) and /schema/{table} (options, columns, indexes,
// permissions, drop): every change goes through table.Service.CreateFrom/UpdateFrom/Drop, the admin
// API's own path, so it reaches every instance (catalogue notification) and is validated the same way.
func (c *Console) schema(w http.ResponseWriter, r *http.Request, rest []string) {
	ctx := r.Context()
	if len(rest) == 0 || rest[0] == "" {
		if r.Method == http.MethodPost {
			req := table.SpecRequest{Name: strings.TrimSpace(r.PostFormValue("name")), IDType: r.PostFormValue("idType"),
				SoftDelete: boolPtr(r.PostFormValue("softDelete") != ""), PerUser: boolPtr(r.PostFormValue("perUser") != ""),
				Permissions: map[string]string{}, Columns: map[string]string{}}
			for _, op := range operations {
				if p := r.PostFormValue("perm." + op); p != "" {
					req.Permissions[op] = p
				}
			}
			for i := 0; i < 8; i++ {
				n := strings.TrimSpace(r.PostFormValue("col" + itoa(i)))
				if n != "" {
					req.Columns[n] = r.PostFormValue("type" + itoa(i))
				}
			}
			s, err := c.o.Tables.CreateFrom(ctx, req)
			if err != nil {
				if msg := schemaError(err); msg != "" {
					c.redirectProblem(w, r, "/schema", msg)
					return
				}
				c.unavailable(w, r, err)
				return
			}
			c.record(r, "table.create", s.Name, nil, table.Describe(s))
			c.redirect(w, r, "/schema/"+url.PathEscape(s.Name), "Table "+s.Name+" created.")
			return
		}
		list, err := c.o.Tables.List(ctx)
		if err != nil {
			c.unavailable(w, r, err)
			return
		}
		d := schemaList{Levels: permissionLevels, Ops: operations, Types: columnTypes}
		for _, s := range list {
			d.Tables = append(d.Tables, table.Describe(s))
		}
		c.render(w, r, http.StatusOK, "schema", view{Title: "Schema and permissions", Nav: "schema", Problem: r.URL.Query().Get("problem"), Data: d})
		return
	}
	name, err := url.PathUnescape(rest[0])
	if err != nil {
		c.notFound(w, r)
		return
	}
	s, err := c.o.Tables.Refresh(ctx, name)
	if errors.Is(err, table.ErrNoTable) {
		c.notFound(w, r)
		return
	}
	if err != nil {
		c.unavailable(w, r, err)
		return
	}
	self := "/schema/" + url.PathEscape(s.Name)
	if r.Method == http.MethodPost {
		before := table.Describe(s)
		action := r.PostFormValue("action")
		if action == "drop" {
			if r.PostFormValue("confirm") != s.Name {
				c.redirectProblem(w, r, self, "Type the table's name to confirm deleting it.")
				return
			}
			if err := c.o.Tables.Drop(ctx, s.Name); err != nil {
				if msg := schemaError(err); msg != "" {
					c.redirectProblem(w, r, self, msg)
					return
				}
				c.unavailable(w, r, err)
				return
			}
			c.record(r, "table.drop", s.Name, before, nil)
			c.redirect(w, r, "/schema", "Table "+s.Name+" deleted.")
			return
		}
		req := table.SpecRequest{}
		switch action {
		case "permissions":
			req.Permissions = map[string]string{}
			for _, op := range operations {
				if p := r.PostFormValue("perm." + op); p != "" {
					req.Permissions[op] = p
				}
			}
		case "options":
			req.SoftDelete = boolPtr(r.PostFormValue("softDelete") != "")
			req.DynamicSchema = boolPtr(r.PostFormValue("dynamicSchema") != "")
		case "column":
			req.Columns = map[string]string{strings.TrimSpace(r.PostFormValue("column")): r.PostFormValue("type")}
		case "index":
			req.Indexes = []string{strings.TrimSpace(r.PostFormValue("index"))}
		default:
			c.redirectProblem(w, r, self, "Unknown change.")
			return
		}
		ns, err := c.o.Tables.UpdateFrom(ctx, s.Name, req)
		if err != nil {
			if msg := schemaError(err); msg != "" {
				c.redirectProblem(w, r, self, msg)
				return
			}
			c.unavailable(w, r, err)
			return
		}
		after := table.Describe(ns)
		c.record(r, "table."+action, s.Name, before, after)
		c.redirect(w, r, self, "Saved.")
		return
	}
	d := schemaPage{Info: table.Describe(s), Columns: s.Columns(), Levels: permissionLevels, Ops: operations, Types: columnTypes}
	c.render(w, r, http.StatusOK, "table", view{Title: "Table " + s.Name, Nav: "schema", Problem: r.URL.Query().Get("problem"), Data: d})
}

func boolPtr(b bool) *bool { return &b }

func itoa(i int) string { return string(rune('0' + i)) }
