package push

import (
	"context"
	"time"
)

// Scripts adapts a Service to the scripts' push object (script.Push): targets as scripts give them,
// each send in a transaction of its own, its workers woken after commit.
type Scripts struct{ S *Service }

// Platforms lists the configured platforms.
func (a Scripts) Platforms() []string {
	if a.S == nil {
		return nil
	}
	return a.S.Platforms()
}

// Send queues a native notification (push.apns.send, push.gcm.send, push.wns.send*, ...).
func (a Scripts) Send(ctx context.Context, platform string, target any, payload []byte, headers map[string]string, expires time.Time) (int, error) {
	t, err := a.S.ResolveTarget(platform, target)
	if err != nil {
		return 0, err
	}
	if len(headers) == 0 {
		headers = nil
	}
	if err := checkHeaders(headers); err != nil {
		return 0, err
	}
	res, err := a.S.SendNative(ctx, nil, t, Native{Platform: platform, Payload: payload, Headers: headers, Expires: expires})
	return res.Queued, err
}

// SendTemplate queues a template send (push.send).
func (a Scripts) SendTemplate(ctx context.Context, target any, props map[string]string) (int, error) {
	t, err := a.S.ResolveTarget("", target)
	if err != nil {
		return 0, err
	}
	res, err := a.S.SendTemplate(ctx, nil, t, props)
	return res.Queued, err
}
