package script

import (
	"context"
	"errors"
	"fmt"

	"github.com/dop251/goja"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// ErrPushRegistration is a registration refused by extensions/push.js (the message is the script's).
var ErrPushRegistration = errors.New("push registration refused")

// HasPushHook reports whether the app has extensions/push.js.
func (e *Engine) HasPushHook() bool {
	_, ok := e.Current().ScriptPath("extensions", "push.js")
	return ok
}

// PushRegister runs extensions/push.js's register(registration, context, done), as the original
// did before storing a v1 registration: context.user is the caller (with tables, mssql and push);
// the script may change the registration in place; done(err) refuses it. Without the file or the
// export the registration comes back unchanged.
func (e *Engine) PushRegister(ctx context.Context, registration map[string]any, c *auth.Caller) (map[string]any, error) {
	v := e.Current()
	path, ok := v.ScriptPath("extensions", "push.js")
	if !ok {
		return registration, nil
	}
	if c == nil {
		c = &auth.Caller{}
	}
	finished := false
	var refused error
	var out map[string]any
	err := e.run(ctx, v, v.rel(path), func(m *vm) error {
		exports, err := m.exportsOf(path)
		if err != nil {
			return err
		}
		ex, ok := exports.(*goja.Object)
		var f goja.Callable
		if ok {
			f, ok = goja.AssertFunction(ex.Get("register"))
		}
		if !ok {
			finished, out = true, registration
			return nil
		}
		reg := m.toJS(registration)
		cx := m.rt.NewObject()
		_ = cx.Set("user", m.userObject(c))
		_ = cx.Set("tables", m.rt.Get("tables"))
		_ = cx.Set("mssql", m.rt.Get("mssql"))
		_ = cx.Set("push", m.rt.Get("push"))
		done := m.rt.ToValue(func(call goja.FunctionCall) goja.Value {
			if finished {
				return goja.Undefined()
			}
			finished = true
			if a := call.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
				msg := a.String()
				if o, ok := a.(*goja.Object); ok {
					if mv := o.Get("message"); mv != nil && !goja.IsUndefined(mv) {
						msg = mv.String()
					}
				}
				refused = fmt.Errorf("%w: %s", ErrPushRegistration, msg)
				return goja.Undefined()
			}
			g, err := m.toGo(reg)
			if err != nil {
				refused = fmt.Errorf("%w: %v", ErrPushRegistration, err)
				return goja.Undefined()
			}
			obj, ok := g.(map[string]any)
			if !ok {
				refused = fmt.Errorf("%w: the registration is no longer an object", ErrPushRegistration)
				return goja.Undefined()
			}
			out = obj
			return goja.Undefined()
		})
		_, err = f(goja.Undefined(), reg, cx, done)
		return err
	}, func() bool { return finished })
	if err == nil && !finished {
		err = errors.New("extensions/push.js did not call done()")
	}
	if err != nil {
		msg, where := Describe(err)
		return nil, fmt.Errorf("extensions/push.js: %s %s", msg, where)
	}
	if refused != nil {
		return nil, refused
	}
	return out, nil
}
