package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/audit"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// AdminHandler serves /admin/keys (mount behind the admin permission):
//
//	GET  /admin/keys          the ring: version, keys by fingerprint and state, live instances (no secrets)
//	POST /admin/keys/rotate   {"which":"master"|"application"|"system","revokePrevious":false}
//	                          → the finished rotation, with the new master or application key
//
// Without a sealed ring (Store nil) both answer 409 with what to configure.
type AdminHandler struct {
	Store   *Store
	Options RotateOptions
	Log     *slog.Logger
}

type keyView struct {
	Kind        Kind      `json:"kind"`
	State       State     `json:"state"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"createdAt"`
	RetiredAt   time.Time `json:"retiredAt,omitzero"`
	KID         string    `json:"kid,omitempty"`
	Alg         string    `json:"alg,omitempty"`
	SignsFrom   time.Time `json:"signsFrom,omitzero"`
}

type instanceView struct {
	ID          string    `json:"id"`
	Host        string    `json:"host"`
	StartedAt   time.Time `json:"startedAt"`
	HeartbeatAt time.Time `json:"heartbeatAt"`
	RingVersion int64     `json:"ringVersion"`
	ConfigKeys  []Kind    `json:"keysFromConfiguration"`
}

func viewKeys(r *Ring) []keyView {
	out := make([]keyView, 0, len(r.Keys))
	for _, k := range r.Keys {
		out = append(out, keyView{Kind: k.Kind, State: k.State, Fingerprint: k.Fingerprint, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt,
			KID: k.KID, Alg: k.Alg, SignsFrom: k.NotBefore})
	}
	return out
}

func (h *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.SetRoute(r, "/admin/keys")
	w.Header().Set("Cache-Control", "no-store")
	rest := strings.Trim(strings.TrimPrefix(strings.ToLower(r.URL.Path), "/admin/keys"), "/")
	if rest != "" && rest != "rotate" {
		httpx.Error(w, r, http.StatusNotFound, "Not Found")
		return
	}
	if h.Store == nil {
		httpx.Error(w, r, http.StatusConflict, "The keys are not kept in the database: configure key_encryption_key (or key_encryption_key_file) on every instance to manage them here.")
		return
	}
	if rest == "" {
		if r.Method != http.MethodGet {
			httpx.MethodNotAllowed(w, r, "GET")
			return
		}
		h.status(w, r)
		return
	}
	if r.Method != http.MethodPost {
		httpx.MethodNotAllowed(w, r, "POST")
		return
	}
	h.rotate(w, r)
}

func (h *AdminHandler) status(w http.ResponseWriter, r *http.Request) {
	ring, err := h.Store.Load(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	live, err := h.Store.Live(r.Context(), time.Now(), Liveness(h.Options.Poll))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ins := make([]instanceView, 0, len(live))
	for _, in := range live {
		ins = append(ins, instanceView(in))
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"version": ring.Version, "keyEncryptionKey": ring.KEKID, "keys": viewKeys(ring), "instances": ins})
}

func (h *AdminHandler) rotate(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := httpx.ReadJSON(r, &body); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var req struct {
		Which          string `json:"which"`
		RevokePrevious bool   `json:"revokePrevious"`
	}
	for k, v := range body {
		var err error
		switch k {
		case "which":
			err = json.Unmarshal(v, &req.Which)
		case "revokePrevious":
			err = json.Unmarshal(v, &req.RevokePrevious)
		default:
			httpx.Error(w, r, http.StatusBadRequest, "Unknown field \""+k+"\" (which, revokePrevious).")
			return
		}
		if err != nil {
			httpx.Error(w, r, http.StatusBadRequest, "Field \""+k+"\" has the wrong type.")
			return
		}
	}
	k := Kind(req.Which)
	if k != "master" && k != "application" && k != "system" && k != "signing" {
		httpx.Error(w, r, http.StatusBadRequest, "\"which\" must be \"master\", \"application\", \"system\" or \"signing\".")
		return
	}
	// The rotation is finished even if the client goes away: it is not cancelled with the request.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.Options.Grace+5*time.Second)
	defer cancel()
	res, err := h.Store.RotateAndWait(ctx, k, req.RevokePrevious, h.Options)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	audit.Annotate(r.Context(), func(e *audit.Entry) {
		e.Target = string(k)
		e.Before = audit.Snapshot(map[string]any{"fingerprint": res.Previous})
		e.After = audit.Snapshot(map[string]any{"fingerprint": res.New.Fingerprint, "version": res.Ring.Version, "revokePrevious": req.RevokePrevious})
	})
	h.Log.Info("admin: key rotated", "kind", string(k), "from", res.Previous, "to", res.New.Fingerprint,
		"version", res.Ring.Version, "took", res.Took.String(), "request_id", httpx.InfoOf(r).RequestID)
	out := map[string]any{"which": k, "previousFingerprint": res.Previous, "fingerprint": res.New.Fingerprint,
		"version": res.Ring.Version, "liveInstances": res.Live, "tookMs": res.Took.Milliseconds(), "keys": viewKeys(res.Ring)}
	if res.Secret != "" {
		out["key"] = res.Secret
	}
	if k == "signing" {
		out["kid"], out["signsFrom"] = res.New.KID, res.New.NotBefore
	}
	httpx.JSON(w, http.StatusOK, out)
}

func (h *AdminHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ck *ConfiguredKeyError
	switch {
	case errors.As(err, &ck):
		httpx.Error(w, r, http.StatusConflict, ck.Error())
	case errors.Is(err, ErrRotationPending):
		httpx.Error(w, r, http.StatusConflict, "A rotation of this key is still waiting for every instance to accept the new key; try again in a few seconds.")
	case errors.Is(err, ErrNotPromoted):
		httpx.Error(w, r, http.StatusAccepted, "The new key is published and accepted by the instances but not yet signing; it is promoted within key_ring.grace.")
	default:
		h.Log.Error("admin: key ring request failed", "err", err, "request_id", httpx.InfoOf(r).RequestID)
		httpx.Error(w, r, http.StatusServiceUnavailable, "The key ring could not be read or updated; try again.")
	}
}
