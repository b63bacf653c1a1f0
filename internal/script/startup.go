package script

import (
	"context"
	"errors"
	"fmt"

	"github.com/dop251/goja"
)

// Startup runs extensions/startup.js, if the app has one: exports.startup(context, done) with
// context.tables, context.mssql and context.push, before the app serves. An error passed to done, an
// exception or a missing done() within the time budget is an error.
func (e *Engine) Startup(ctx context.Context) error {
	v := e.Current()
	path, ok := v.ScriptPath("extensions", "startup.js")
	if !ok {
		return nil
	}
	finished := false
	var failure error
	err := e.run(ctx, v, v.rel(path), func(m *vm) error {
		exports, err := m.exportsOf(path)
		if err != nil {
			return err
		}
		ex, ok := exports.(*goja.Object)
		if !ok {
			finished = true
			return nil
		}
		f, ok := goja.AssertFunction(ex.Get("startup"))
		if !ok {
			finished = true
			return nil
		}
		c := m.rt.NewObject()
		_ = c.Set("tables", m.rt.Get("tables"))
		_ = c.Set("mssql", m.rt.Get("mssql"))
		_ = c.Set("push", m.rt.Get("push"))
		done := m.rt.ToValue(func(call goja.FunctionCall) goja.Value {
			finished = true
			if a := call.Argument(0); !goja.IsUndefined(a) && !goja.IsNull(a) {
				failure = fmt.Errorf("extensions/startup.js failed: %s", a.String())
			}
			return goja.Undefined()
		})
		_, err = f(goja.Undefined(), c, done)
		return err
	}, func() bool { return finished })
	if err == nil && !finished {
		err = errors.New("extensions/startup.js did not call done()")
	}
	if err != nil {
		msg, where := Describe(err)
		return fmt.Errorf("startup script: %s %s", msg, where)
	}
	return failure
}
