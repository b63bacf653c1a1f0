package appdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// loadPush reads extensions/push.json, the permission of the push registration endpoints, in the
// format of a custom API's metadata: {"routes": {"*": {"put": {"permission": "user"}}}}. Without the
// file the endpoints require the application key, as in the original.
func (a *App) loadPush(dir string) error {
	path := filepath.Join(dir, "push.json")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("app directory: %w", err)
	}
	m, err := readJSON(path)
	if err != nil {
		return err
	}
	api := &API{Name: "push", File: path}
	if err := api.setRoutes(path, m); err != nil {
		return err
	}
	a.push = api
	return nil
}

// PushDeclared reports whether the app has extensions/push.json.
func (a *App) PushDeclared() bool { return a != nil && a.push != nil }

// PushPermission is the permission of a push registration request: method on the path below /push
// ("registrations/<id>", "installations/<id>", "registrationids"), from extensions/push.json, else
// application.
func (a *App) PushPermission(path, method string) auth.Permission {
	if a == nil || a.push == nil {
		return auth.Application
	}
	var segs []string
	for _, s := range strings.Split(strings.Trim(path, "/"), "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	route := Literal(segs)
	if len(a.push.star) == 0 {
		matched := false
		for _, r := range a.push.rules {
			if n := r.pattern.Len(); n <= route.Len() && samePrefix(r.pattern, route, n) {
				matched = true
			}
		}
		if !matched {
			return auth.Application // the original's default for a route push.json does not name
		}
	}
	return a.push.RoutePermission(route, method)
}
