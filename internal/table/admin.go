package table

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/appdir"
	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/notify"
)

// Info is a table's description for the CLI and the admin API.
type Info struct {
	Name          string            `json:"name"`
	IDType        IDType            `json:"idType"`
	SoftDelete    bool              `json:"softDelete"`
	PerUser       bool              `json:"perUser"`
	DynamicSchema bool              `json:"dynamicSchema"`
	PageSize      int               `json:"pageSize,omitempty"`
	MaxTop        int               `json:"maxTop,omitempty"`
	Source        string            `json:"source"`
	Permissions   map[string]string `json:"permissions"`
	Columns       map[string]string `json:"columns"`
}

// Describe turns a schema into its Info.
func Describe(s *Schema) Info {
	in := Info{Name: s.Name, IDType: s.IDType, SoftDelete: s.Options.SoftDelete, PerUser: s.Options.PerUser,
		DynamicSchema: s.Options.DynamicSchema, PageSize: s.Options.PageSize, MaxTop: s.Options.MaxTop, Source: s.Source,
		Permissions: map[string]string{}, Columns: map[string]string{}}
	for _, op := range []appdir.Operation{appdir.Read, appdir.Insert, appdir.Update, appdir.Delete} {
		in.Permissions[string(op)] = s.Permission(op).String()
	}
	for _, c := range s.Columns() {
		in.Columns[c.Name] = string(c.Type)
	}
	return in
}

// SpecRequest is the admin API's body for create and update (and what the CLI flags build).
type SpecRequest struct {
	Name          string            `json:"name"`
	IDType        string            `json:"idType"`
	SoftDelete    *bool             `json:"softDelete"`
	PerUser       *bool             `json:"perUser"`
	DynamicSchema *bool             `json:"dynamicSchema"`
	Permissions   map[string]string `json:"permissions"`
	Columns       map[string]string `json:"columns"`
	Indexes       []string          `json:"indexes"`
}

// Spec validates a request into a Spec.
func (r SpecRequest) Spec() (Spec, error) {
	sp := Spec{Name: r.Name, SoftDelete: r.SoftDelete, PerUser: r.PerUser, Dynamic: r.DynamicSchema, Indexes: r.Indexes,
		Columns: map[string]ColumnType{}, Permissions: map[appdir.Operation]auth.Permission{}}
	switch strings.ToLower(r.IDType) {
	case "":
	case "string":
		sp.IDType = StringID
	case "integer", "int", "number":
		sp.IDType = IntegerID
	default:
		return sp, inputf("idType must be \"string\" or \"integer\"")
	}
	for n, t := range r.Columns {
		ct, err := ParseColumnType(t)
		if err != nil {
			return sp, &InputError{Msg: fmt.Sprintf("column %s: %v", n, err)}
		}
		if !ValidColumnName(n) {
			return sp, inputf("invalid column name %q", n)
		}
		sp.Columns[n] = ct
	}
	// "*" first, so that specific operations override it whatever the map order.
	all := []appdir.Operation{appdir.Read, appdir.Insert, appdir.Update, appdir.Delete}
	for _, pass := range []bool{true, false} {
		for op, ps := range r.Permissions {
			if (op == "*") != pass {
				continue
			}
			p, err := auth.ParsePermission(ps)
			if err != nil {
				return sp, &InputError{Msg: fmt.Sprintf("permission %s: %v", op, err)}
			}
			o := appdir.Operation(strings.ToLower(op))
			switch o {
			case appdir.Read, appdir.Insert, appdir.Update, appdir.Delete:
				sp.Permissions[o] = p
			case "*":
				for _, x := range all {
					sp.Permissions[x] = p
				}
			default:
				return sp, inputf("unknown operation %q (read, insert, update, delete or *)", op)
			}
		}
	}
	return sp, nil
}

// CreateFrom is the admin API's create (and the console's): the request validated into a Spec, then
// Create.
func (svc *Service) CreateFrom(ctx context.Context, req SpecRequest) (*Schema, error) {
	sp, err := req.Spec()
	if err != nil {
		return nil, err
	}
	return svc.Create(ctx, sp)
}

// UpdateFrom is the admin API's update (and the console's) of the table name.
func (svc *Service) UpdateFrom(ctx context.Context, name string, req SpecRequest) (*Schema, error) {
	req.Name = name
	sp, err := req.Spec()
	if err != nil {
		return nil, err
	}
	return svc.Update(ctx, sp)
}

// AuditAction names an update for the audit trail: "table.permissions", "table.columns" or
// "table.indexes" when it changes only that, else "table.alter".
func (r SpecRequest) AuditAction() string {
	var kinds []string
	if len(r.Permissions) > 0 {
		kinds = append(kinds, "table.permissions")
	}
	if len(r.Columns) > 0 {
		kinds = append(kinds, "table.columns")
	}
	if len(r.Indexes) > 0 {
		kinds = append(kinds, "table.indexes")
	}
	if len(kinds) == 1 && r.IDType == "" && r.SoftDelete == nil && r.PerUser == nil && r.DynamicSchema == nil {
		return kinds[0]
	}
	return "table.alter"
}

// ParseAssignments reads CLI lists like "title=string,year=number" or "read=public,insert=user".
func ParseAssignments(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not name=value", part)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// AdminHandler serves /admin/tables (master key): list, create, show, update, delete.
type AdminHandler struct {
	Service *Service
}

func (a *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !httpx.CallerOf(r).IsAdmin() {
		httpx.Error(w, r, http.StatusUnauthorized, httpx.MsgUnauthorized)
		return
	}
	rest := strings.Trim(strings.TrimPrefix(strings.ToLower(r.URL.EscapedPath()), "/admin/tables"), "/")
	name := ""
	if rest != "" {
		n, err := url.PathUnescape(strings.Trim(r.URL.EscapedPath()[len("/admin/tables"):], "/"))
		if err != nil || strings.Contains(n, "/") {
			httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
			return
		}
		name = n
	}
	ctx := r.Context()
	switch {
	case name == "" && r.Method == http.MethodGet:
		list, err := a.Service.List(ctx)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]Info, 0, len(list))
		for _, s := range list {
			out = append(out, Describe(s))
		}
		httpx.JSON(w, http.StatusOK, out)
	case name == "" && r.Method == http.MethodPost:
		var req SpecRequest
		if err := httpx.ReadJSON(r, &req); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		s, err := a.Service.CreateFrom(ctx, req)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		in := Describe(s)
		audit.Annotate(ctx, func(e *audit.Entry) { e.Target, e.After = in.Name, audit.Snapshot(in) })
		httpx.JSON(w, http.StatusCreated, in)
	case name == "":
		httpx.MethodNotAllowed(w, r, "GET", "POST")
	case r.Method == http.MethodGet:
		s, err := a.Service.Refresh(ctx, name)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		httpx.JSON(w, http.StatusOK, Describe(s))
	case r.Method == http.MethodPatch:
		var req SpecRequest
		if err := httpx.ReadJSON(r, &req); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		var before *Info
		if cur, err := a.Service.Refresh(ctx, name); err == nil {
			in := Describe(cur)
			before = &in
		}
		s, err := a.Service.UpdateFrom(ctx, name, req)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		in := Describe(s)
		audit.Annotate(ctx, func(e *audit.Entry) {
			e.Action, e.Target, e.After = req.AuditAction(), in.Name, audit.Snapshot(in)
			if before != nil {
				e.Before = audit.Snapshot(*before)
			}
		})
		httpx.JSON(w, http.StatusOK, in)
	case r.Method == http.MethodDelete:
		if cur, err := a.Service.Refresh(ctx, name); err == nil {
			in := Describe(cur)
			audit.Annotate(ctx, func(e *audit.Entry) { e.Target, e.Before = in.Name, audit.Snapshot(in) })
		}
		if err := a.Service.Drop(ctx, name); err != nil {
			a.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		httpx.MethodNotAllowed(w, r, "GET", "PATCH", "DELETE")
	}
}

func (a *AdminHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		httpx.Error(w, r, http.StatusBadRequest, ie.Msg)
	case errors.Is(err, ErrNoTable):
		httpx.Error(w, r, http.StatusNotFound, "Table does not exist.")
	case errors.Is(err, ErrExists):
		httpx.Error(w, r, http.StatusConflict, "A table with that name already exists.")
	default:
		a.Service.log.Error("table admin request failed", "request_id", httpx.InfoOf(r).RequestID, "err", err)
		httpx.Error(w, r, http.StatusInternalServerError, httpx.MsgInternal)
	}
}

// Run reloads the catalogue when another instance or the CLI says it changed (Notify), and every
// interval as the fallback, so that changes (permissions, options, new columns) reach this one.
func (svc *Service) Run(ctx context.Context, interval time.Duration) {
	notify.Follow(ctx, svc.notifier, notify.Tables, interval, func(ctx context.Context) {
		if err := svc.reload(ctx); err != nil && ctx.Err() == nil {
			svc.log.Warn("reloading the table catalogue failed", "err", err)
		}
	})
}

// SortedColumns lists Info columns "name=type" sorted, for the CLI.
func (in Info) SortedColumns() []string {
	out := make([]string, 0, len(in.Columns))
	for n, t := range in.Columns {
		out = append(out, n+"="+t)
	}
	sort.Strings(out)
	return out
}
