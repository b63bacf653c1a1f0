package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Limits on what a client registers.
const (
	MaxTemplates      = 20  // templates per installation
	MaxHeaders        = 20  // headers per template
	MaxHeaderLength   = 512 // bytes of one header value
	maxIDLength       = 128
	maxTemplateName   = 64
	maxExpiryLength   = 64
	maxHeaderNameSize = 64
)

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	headerName      = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	templatePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

func checkID(kind, id string) error {
	if len(id) == 0 || len(id) > maxIDLength || !idPattern.MatchString(id) {
		return inputf("invalid %s id: 1 to %d letters, digits, '.', '_' or '-'", kind, maxIDLength)
	}
	return nil
}

func checkHeaders(h map[string]string) error {
	if len(h) > MaxHeaders {
		return inputf("too many template headers: %d (at most %d)", len(h), MaxHeaders)
	}
	for k, v := range h {
		if len(k) > maxHeaderNameSize || !headerName.MatchString(k) {
			return inputf("invalid template header name %q", truncate(k, 40))
		}
		if len(v) > MaxHeaderLength || strings.ContainsAny(v, "\r\n\x00") {
			return inputf("invalid value of template header %s", k)
		}
	}
	return nil
}

func checkTemplate(name, body string) error {
	if len(name) == 0 || len(name) > maxTemplateName || !templatePattern.MatchString(name) {
		return inputf("invalid template name %q: 1 to %d letters, digits, '.', '_' or '-'", truncate(name, 40), maxTemplateName)
	}
	if err := CheckTemplate(body); err != nil {
		return &InputError{Msg: fmt.Sprintf("template %s: %v", name, err)}
	}
	return nil
}

// ---- v1 registrations ------------------------------------------------------------------------

// NewRegistrationID answers POST /push/registrationids.
func (s *Service) NewRegistrationID() string { return newID() }

// V1Registration is the body of PUT /push/registrations/{id} and an item of GET's answer.
type V1Registration struct {
	RegistrationID string            `json:"registrationId,omitempty"`
	Platform       string            `json:"platform,omitempty"`
	DeviceID       string            `json:"deviceId"`
	Tags           []string          `json:"tags"`
	TemplateBody   string            `json:"templateBody,omitempty"`
	TemplateName   string            `json:"templateName,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	Expiry         string            `json:"expiry,omitempty"`
}

// Hook is extensions/push.js's register(registration, context, done): it may change the
// registration (as a JSON object) or refuse it with an error.
type Hook func(ctx context.Context, registration map[string]any, c Caller) (map[string]any, error)

// HookError is a registration refused by extensions/push.js.
type HookError struct{ Msg string }

func (e *HookError) Error() string { return e.Msg }

// PutV1 creates or replaces a v1 registration. installationID is the X-ZUMO-INSTALLATION-ID header
// (added as a tag, as in the original); hook, when set, runs before anything is stored.
func (s *Service) PutV1(ctx context.Context, c Caller, id string, in V1Registration, installationID string, hook Hook) error {
	if err := checkID("registration", id); err != nil {
		return err
	}
	if err := s.checkClientTags(c, in.Tags); err != nil {
		return err
	}
	if installationID != "" && !contains(in.Tags, installationID) {
		if err := ValidTag(installationID); err != nil {
			return inputf("invalid X-ZUMO-INSTALLATION-ID: %v", err)
		}
		in.Tags = append(in.Tags, installationID)
	}
	if hook != nil {
		raw, _ := json.Marshal(in)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		m["registrationId"] = id
		out, err := hook(ctx, m, c)
		if err != nil {
			return err
		}
		raw, _ = json.Marshal(out)
		var back V1Registration
		if err := json.Unmarshal(raw, &back); err != nil {
			return &HookError{Msg: "extensions/push.js changed the registration into an invalid one: " + err.Error()}
		}
		in = back
	}
	platform, err := normalizePlatform(in.Platform, false)
	if err != nil {
		return err
	}
	if err := s.ValidateChannel(platform, in.DeviceID); err != nil {
		return err
	}
	if in.TemplateBody != "" {
		if in.TemplateName == "" {
			return inputf("Creating or updating a registration with a templateBody provided also requires a templateName as part of the body")
		}
		if err := checkTemplate(in.TemplateName, in.TemplateBody); err != nil {
			return err
		}
	}
	if err := checkHeaders(in.Headers); err != nil {
		return err
	}
	if len(in.Expiry) > maxExpiryLength {
		return inputf("invalid expiry")
	}
	tags, err := s.finalTags(c, in.Tags)
	if err != nil {
		return err
	}
	old, err := s.store.Registration(ctx, id)
	switch {
	case err == nil:
		if old.InstallationID != "" {
			return inputf("the id names an installation's registration")
		}
		if err := s.checkOwner(c, old.UserID); err != nil {
			return err
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	r := Registration{ID: id, Platform: platform, Channel: in.DeviceID, Tags: tags, Headers: in.Headers, Expiry: in.Expiry,
		UserID: c.UserID, UpdatedAt: s.now()}
	if in.TemplateBody != "" {
		r.TemplateName, r.TemplateBody = in.TemplateName, in.TemplateBody
	}
	return s.store.PutRegistration(ctx, r)
}

// ListV1 answers GET /push/registrations?platform=&deviceId=.
func (s *Service) ListV1(ctx context.Context, platform, deviceID string) ([]V1Registration, error) {
	if deviceID == "" {
		return nil, inputf("Listing registrations requires a deviceId query parameter")
	}
	p, err := normalizePlatform(platform, false)
	if err != nil {
		return nil, err
	}
	rs, err := s.store.ByChannel(ctx, p, deviceID)
	if err != nil {
		return nil, err
	}
	out := []V1Registration{}
	for _, r := range rs {
		if r.InstallationID != "" {
			continue
		}
		out = append(out, V1Registration{RegistrationID: r.ID, DeviceID: r.Channel, Tags: nonNil(r.Tags), TemplateBody: r.TemplateBody,
			TemplateName: r.TemplateName, Headers: r.Headers, Expiry: r.Expiry})
	}
	return out, nil
}

// DeleteV1 removes a v1 registration (ErrNotFound when there is none).
func (s *Service) DeleteV1(ctx context.Context, c Caller, id string) error {
	old, err := s.store.Registration(ctx, id)
	if err != nil {
		return err
	}
	if old.InstallationID != "" {
		return ErrNotFound
	}
	if err := s.checkOwner(c, old.UserID); err != nil {
		return err
	}
	return s.store.DeleteRegistration(ctx, id)
}

// ---- v2 installations ------------------------------------------------------------------------

// Installation is the body of PUT /push/installations/{id} (Notification Hubs' installation).
type Installation struct {
	InstallationID string                          `json:"installationId,omitempty"`
	Platform       string                          `json:"platform"`
	PushChannel    string                          `json:"pushChannel"`
	Tags           []string                        `json:"tags,omitempty"`
	Templates      map[string]InstallationTemplate `json:"templates,omitempty"`
	// SecondaryTiles (WNS secondary tiles) are accepted and ignored.
	SecondaryTiles json.RawMessage `json:"secondaryTiles,omitempty"`
	// ExpirationTime is accepted for compatibility; Gatehouse keeps installations until removed.
	ExpirationTime string `json:"expirationTime,omitempty"`
}

// InstallationTemplate is one template of an installation.
type InstallationTemplate struct {
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Expiry  string            `json:"expiry,omitempty"`
}

// PutInstallation creates or replaces an installation and its templates.
func (s *Service) PutInstallation(ctx context.Context, c Caller, id string, in Installation) error {
	rows, err := s.installationRows(c, id, in)
	if err != nil {
		return err
	}
	if err := s.ownInstallation(ctx, c, id); err != nil {
		return err
	}
	return s.store.PutInstallation(ctx, id, rows)
}

// installationRows validates an installation and turns it into its rows (no storage involved).
func (s *Service) installationRows(c Caller, id string, in Installation) ([]Registration, error) {
	if err := checkID("installation", id); err != nil {
		return nil, err
	}
	if in.InstallationID != "" && in.InstallationID != id {
		return nil, inputf("the body's installationId differs from the URL's")
	}
	platform, err := normalizePlatform(in.Platform, true)
	if err != nil {
		return nil, err
	}
	if err := s.ValidateChannel(platform, in.PushChannel); err != nil {
		return nil, err
	}
	if err := s.checkClientTags(c, in.Tags); err != nil {
		return nil, err
	}
	if len(in.Templates) > MaxTemplates {
		return nil, inputf("too many templates: %d (at most %d)", len(in.Templates), MaxTemplates)
	}
	base, err := s.finalTags(c, in.Tags)
	if err != nil {
		return nil, err
	}
	now := s.now()
	rows := []Registration{{ID: "i:" + id, Platform: platform, Channel: in.PushChannel, Tags: base, UserID: c.UserID, UpdatedAt: now}}
	names := make([]string, 0, len(in.Templates))
	for n := range in.Templates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := in.Templates[n]
		if err := checkTemplate(n, t.Body); err != nil {
			return nil, err
		}
		if t.Body == "" {
			return nil, inputf("template %s has an empty body", n)
		}
		if err := checkHeaders(t.Headers); err != nil {
			return nil, err
		}
		if err := s.checkClientTags(c, t.Tags); err != nil {
			return nil, err
		}
		if len(t.Expiry) > maxExpiryLength {
			return nil, inputf("invalid expiry of template %s", n)
		}
		tags, err := s.finalTags(c, append(append([]string(nil), base...), t.Tags...))
		if err != nil {
			return nil, err
		}
		rows = append(rows, Registration{ID: "i:" + id + "/" + n, Platform: platform, Channel: in.PushChannel, Tags: tags,
			TemplateName: n, TemplateBody: t.Body, Headers: t.Headers, Expiry: t.Expiry, UserID: c.UserID, UpdatedAt: now})
	}
	return rows, nil
}

func (s *Service) ownInstallation(ctx context.Context, c Caller, id string) error {
	old, err := s.store.Installation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.checkOwner(c, old[0].UserID)
}

// GetInstallation returns an installation as stored (admin API, CLI).
func (s *Service) GetInstallation(ctx context.Context, id string) (Installation, error) {
	rows, err := s.store.Installation(ctx, id)
	if err != nil {
		return Installation{}, err
	}
	in := Installation{InstallationID: id}
	for _, r := range rows {
		if r.TemplateBody == "" {
			in.Platform, in.PushChannel, in.Tags = r.Platform, r.Channel, r.Tags
			continue
		}
		if in.Templates == nil {
			in.Templates = map[string]InstallationTemplate{}
		}
		in.Templates[r.TemplateName] = InstallationTemplate{Body: r.TemplateBody, Headers: r.Headers, Tags: r.Tags, Expiry: r.Expiry}
	}
	return in, nil
}

// DeleteInstallation removes an installation; deleting one that does not exist succeeds, as in
// Notification Hubs.
func (s *Service) DeleteInstallation(ctx context.Context, c Caller, id string) error {
	if err := checkID("installation", id); err != nil {
		return err
	}
	if err := s.ownInstallation(ctx, c, id); err != nil {
		return err
	}
	err := s.store.DeleteInstallation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ---- operators -------------------------------------------------------------------------------

// DeviceInfo is a registration as operators see it (the channel shortened: device tokens are
// credentials of a sort).
type DeviceInfo struct {
	ID             string            `json:"id"`
	InstallationID string            `json:"installationId,omitempty"`
	Platform       string            `json:"platform"`
	Channel        string            `json:"channel"`
	Tags           []string          `json:"tags"`
	TemplateName   string            `json:"templateName,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
	UserID         string            `json:"userId,omitempty"`
	UpdatedAt      time.Time         `json:"updatedAt"`
}

// MaxList bounds a listing.
const MaxList = 1000

// List returns the registrations of a user, of an installation, of a device (platform and channel)
// or with a tag; exactly one selector.
func (s *Service) List(ctx context.Context, userID, installationID, platform, channel, tag string) ([]DeviceInfo, error) {
	var rs []Registration
	var err error
	switch {
	case userID != "":
		rs, err = s.store.ByTag(ctx, UserTag(userID), MaxList)
	case installationID != "":
		rs, err = s.store.Installation(ctx, installationID)
		if errors.Is(err, ErrNotFound) {
			rs, err = nil, nil
		}
	case channel != "":
		p, perr := normalizePlatform(platform, true)
		if perr != nil {
			return nil, perr
		}
		rs, err = s.store.ByChannel(ctx, p, channel)
	case tag != "":
		if err := ValidTag(tag); err != nil {
			return nil, &InputError{Msg: err.Error()}
		}
		rs, err = s.store.ByTag(ctx, tag, MaxList)
	default:
		return nil, inputf("list needs a user, an installation, a device (platform and channel) or a tag")
	}
	if err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, len(rs))
	for _, r := range rs {
		out = append(out, DeviceInfo{ID: r.ID, InstallationID: r.InstallationID, Platform: r.Platform, Channel: ShortChannel(r.Channel),
			Tags: nonNil(r.Tags), TemplateName: r.TemplateName, Headers: r.Headers, UserID: r.UserID, UpdatedAt: r.UpdatedAt.UTC()})
	}
	return out, nil
}

// ShortChannel shows the beginning and end of a channel, enough to recognise it.
func ShortChannel(c string) string {
	if len(c) <= 24 {
		return c
	}
	return c[:12] + "…" + c[len(c)-8:]
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
