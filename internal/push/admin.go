package push

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// SendRequest is an operator's send (admin API, CLI): a native payload to a platform, or (Platform
// empty) template properties, to a tag expression (Tag), a device (Device) or everyone (neither).
type SendRequest struct {
	Platform   string            `json:"platform,omitempty"`
	Tag        string            `json:"tag,omitempty"`
	Device     string            `json:"device,omitempty"`
	Payload    json.RawMessage   `json:"payload,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	TTL        string            `json:"ttl,omitempty"` // a Go duration: how long the notification is worth delivering
}

// Send queues an operator's send.
func (s *Service) Send(ctx context.Context, req SendRequest) (SendResult, error) {
	if !s.Configured() {
		return SendResult{}, inputf("push is not configured: no platform has credentials")
	}
	t := Target{All: req.Tag == "" && req.Device == ""}
	if req.Tag != "" {
		e, err := ParseExpr(req.Tag)
		if err != nil {
			return SendResult{}, err
		}
		t.Expr = e
	}
	var exp time.Time
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return SendResult{}, inputf("invalid ttl %q (a duration such as 1h)", req.TTL)
		}
		exp = s.now().Add(d)
	}
	if req.Platform == "" {
		if req.Device != "" || len(req.Payload) > 0 {
			return SendResult{}, inputf("a template send takes properties and a tag, not a payload or a device (give a platform for a native send)")
		}
		return s.SendTemplate(ctx, nil, t, req.Properties)
	}
	p, err := normalizePlatform(req.Platform, true)
	if err != nil {
		return SendResult{}, err
	}
	if req.Device != "" {
		t.Devices = []string{req.Device}
	}
	if len(req.Payload) == 0 {
		return SendResult{}, inputf("a native send needs a payload")
	}
	payload := []byte(req.Payload)
	// A JSON string is the payload's text (a WNS XML toast, a raw notification).
	var str string
	if json.Unmarshal(req.Payload, &str) == nil {
		payload = []byte(str)
	}
	if err := checkHeaders(req.Headers); err != nil {
		return SendResult{}, err
	}
	return s.SendNative(ctx, nil, t, Native{Platform: p, Payload: payload, Headers: req.Headers, Expires: exp})
}

// Status is the outbox as operators see it.
type Status struct {
	Platforms []string `json:"platforms"`
	Pending   int64    `json:"pending"`
}

// Status reports the configured platforms and the messages waiting.
func (s *Service) Status(ctx context.Context) (Status, error) {
	n, err := s.store.Pending(ctx)
	if err != nil {
		return Status{}, err
	}
	return Status{Platforms: s.Platforms(), Pending: n}, nil
}

// AdminHandler serves /admin/push (master key, checked by the mount): GET /admin/push (status),
// GET /admin/push/registrations?user=|installation=|platform=&channel=|tag=, POST /admin/push/send.
func (s *Service) AdminHandler() http.Handler {
	h := &handler{s: s, o: HandlerOptions{Log: s.log}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.Trim(strings.TrimPrefix(strings.ToLower(r.URL.Path), "/admin/push"), "/")
		switch rest {
		case "":
			if r.Method != http.MethodGet {
				httpx.MethodNotAllowed(w, r, http.MethodGet)
				return
			}
			st, err := s.Status(r.Context())
			if err != nil {
				h.fail(w, r, err)
				return
			}
			httpx.JSON(w, http.StatusOK, st)
		case "registrations":
			if r.Method != http.MethodGet {
				httpx.MethodNotAllowed(w, r, http.MethodGet)
				return
			}
			q := r.URL.Query()
			list, err := s.List(r.Context(), q.Get("user"), q.Get("installation"), q.Get("platform"), q.Get("channel"), q.Get("tag"))
			if err != nil {
				h.fail(w, r, err)
				return
			}
			httpx.JSON(w, http.StatusOK, list)
		case "send":
			if r.Method != http.MethodPost {
				httpx.MethodNotAllowed(w, r, http.MethodPost)
				return
			}
			var req SendRequest
			if err := httpx.ReadJSON(r, &req); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
			res, err := s.Send(r.Context(), req)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			httpx.JSON(w, http.StatusAccepted, res)
		default:
			httpx.Error(w, r, http.StatusNotFound, httpx.MsgNotFound)
		}
	})
}
