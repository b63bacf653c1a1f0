package script

import (
	"context"
	"fmt"
	"time"

	"github.com/dop251/goja"
)

// Push is what the scripts' push object sends through (implemented by push.Scripts): a native
// payload to a platform's devices, or template properties to template registrations. target is
// nil (everyone), a string (a device token or a tag expression) or a []string.
type Push interface {
	// Platforms lists the configured platforms ("apns", "fcm", "wns", "webpush"); none: push is not
	// configured and scripts get the original's "push is not configured" behaviour.
	Platforms() []string
	Send(ctx context.Context, platform string, target any, payload []byte, headers map[string]string, expires time.Time) (int, error)
	SendTemplate(ctx context.Context, target any, props map[string]string) (int, error)
}

// installPush gives the prelude gh.pushPlatforms() and gh.pushSend(kind, platform, target, payload,
// headers, expiry) → queued count (throws the send's error; the prelude routes it to callbacks).
func (m *vm) installPush(gh *goja.Object) {
	rt := m.rt
	_ = gh.Set("pushPlatforms", func() goja.Value {
		if m.e.opt.Push == nil {
			return rt.NewArray()
		}
		ps := m.e.opt.Push.Platforms()
		items := make([]any, len(ps))
		for i, p := range ps {
			items[i] = p
		}
		return rt.NewArray(items...)
	})
	_ = gh.Set("pushSend", func(c goja.FunctionCall) goja.Value {
		if m.e.opt.Push == nil {
			m.throwf("push is not configured")
		}
		kind, platform := c.Argument(0).String(), c.Argument(1).String()
		target, err := pushTarget(c.Argument(2))
		if err != nil {
			panic(m.errorValue(err.Error()))
		}
		var n int
		switch kind {
		case "template":
			props := map[string]string{}
			if o, ok := c.Argument(3).(*goja.Object); ok {
				for _, k := range o.Keys() {
					v := o.Get(k)
					if goja.IsUndefined(v) || goja.IsNull(v) {
						continue
					}
					props[k] = v.String()
				}
			}
			n, err = m.e.opt.Push.SendTemplate(m.ctx(), target, props)
		default:
			payload := []byte(c.Argument(3).String())
			headers := map[string]string{}
			if o, ok := c.Argument(4).(*goja.Object); ok {
				for _, k := range o.Keys() {
					headers[k] = o.Get(k).String()
				}
			}
			var exp time.Time
			if e := c.Argument(5); !goja.IsUndefined(e) && !goja.IsNull(e) {
				if ms := e.ToFloat(); ms > 0 {
					exp = time.UnixMilli(int64(ms))
				}
			}
			n, err = m.e.opt.Push.Send(m.ctx(), platform, target, payload, headers, exp)
		}
		if err != nil {
			panic(m.errorValue(err.Error()))
		}
		return rt.ToValue(n)
	})
}

func pushTarget(v goja.Value) (any, error) {
	if goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	switch x := v.Export().(type) {
	case string:
		return x, nil
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("push: every target in the array must be a string (a tag or a device token)")
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("push: the target must be a string (a tag expression or a device token), an array of them, or null for everyone")
}
