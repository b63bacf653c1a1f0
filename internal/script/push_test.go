package script

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/token"
)

// pushCall is one send the scripts made.
type pushCall struct {
	Kind, Platform string
	Target         any
	Payload        string
	Headers        map[string]string
	Expires        time.Time
	Props          map[string]string
}

// recordingPush records sends; it refuses targets containing "$" and payloads over 100 bytes as
// push.Service would (bad tag expression, platform limit).
type recordingPush struct {
	platforms []string
	mu        sync.Mutex
	calls     []pushCall
}

func (r *recordingPush) Platforms() []string { return r.platforms }

func (r *recordingPush) check(target any) error {
	if s, ok := target.(string); ok && strings.Contains(s, "$") {
		return fmt.Errorf("invalid tag expression %q: character \"$\" is not allowed in a tag at position %d", s, strings.Index(s, "$")+1)
	}
	return nil
}

func (r *recordingPush) Send(_ context.Context, platform string, target any, payload []byte, headers map[string]string, exp time.Time) (int, error) {
	if err := r.check(target); err != nil {
		return 0, err
	}
	if platform == "apns" && len(payload) > 100 {
		return 0, errors.New("push: apns payload: payload of 101 bytes exceeds 100")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, pushCall{Kind: "native", Platform: platform, Target: target, Payload: string(payload), Headers: headers, Expires: exp})
	return 1, nil
}

func (r *recordingPush) SendTemplate(_ context.Context, target any, props map[string]string) (int, error) {
	if err := r.check(target); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, pushCall{Kind: "template", Target: target, Props: props})
	return 2, nil
}

func (r *recordingPush) last() pushCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return pushCall{}
	}
	return r.calls[len(r.calls)-1]
}

// pushEngine is testEngine with the push object served by p.
func pushEngine(t *testing.T, p Push, files map[string]string) *Engine {
	t.Helper()
	e := testEngine(t, files)
	e.SetPush(p)
	return e
}

func TestPushScriptAPI(t *testing.T) {
	rec := &recordingPush{platforms: []string{"apns", "fcm", "wns", "webpush"}}
	e := pushEngine(t, rec, nil)
	ok := `{success: function (r) { done('ok ' + r.queued); }, error: function (e) { done('error ' + e.message); }}`
	cases := []struct {
		name, src, want string
		check           func(c pushCall) string
	}{
		{"apns fields", `push.apns.send('news && !sport', {alert: 'Hi', badge: 3, sound: 'ping.aiff', payload: {id: 7}, expiry: 2000000000}, ` + ok + `)`, "ok 1",
			func(c pushCall) string {
				return c.Platform + " " + fmt.Sprint(c.Target) + " " + c.Payload + " " + c.Expires.UTC().Format(time.RFC3339)
			}},
		{"apns aps", `push.apns.send(null, {aps: {alert: 'x'}, custom: 1}, ` + ok + `)`, "ok 1",
			func(c pushCall) string { return fmt.Sprint(c.Target == nil) + " " + c.Payload }},
		{"gcm string", `push.gcm.send(['a', 'b'], 'hello', ` + ok + `)`, "ok 1",
			func(c pushCall) string { return c.Platform + " " + fmt.Sprint(c.Target) + " " + c.Payload }},
		{"gcm object", `push.gcm.send('t', {title: 'x'}, ` + ok + `)`, "ok 1", func(c pushCall) string { return c.Payload }},
		{"gcm full", `push.gcm.send('t', '{"data":{"m":"1"},"notification":{"title":"T"}}', ` + ok + `)`, "ok 1", func(c pushCall) string { return c.Payload }},
		{"wns toast", `push.wns.sendToastText02('t', {text1: 'A & B', text2: '<2>'}, {launch: 'x=1', duration: 'long', audio: {src: 'IM'}, success: function (r) { done('ok ' + r.queued); }})`, "ok 1",
			func(c pushCall) string { return c.Payload + " " + c.Headers["X-WNS-Type"] }},
		{"wns tile strings", `push.wns.sendTileWideImageAndText01('t', 'img.png', 'alt', 'caption', ` + ok + `)`, "ok 1",
			func(c pushCall) string { return c.Payload + " " + c.Headers["X-WNS-Type"] }},
		{"wns badge", `push.wns.sendBadge('t', 'alert', ` + ok + `)`, "ok 1", func(c pushCall) string { return c.Payload + " " + c.Headers["X-WNS-Type"] }},
		{"wns raw", `push.wns.sendRaw('t', {k: 1}, {headers: {'X-WNS-Cache-Policy': 'cache'}, success: function (r) { done('ok ' + r.queued); }})`, "ok 1",
			func(c pushCall) string {
				return c.Payload + " " + c.Headers["X-WNS-Type"] + " " + c.Headers["X-WNS-Cache-Policy"]
			}},
		{"wns multi-binding toast", `push.wns.sendTile('t', {type: 'TileSquareText04', text1: 's'}, {type: 'TileWideText03', text1: 'w'}, ` + ok + `)`, "ok 1",
			func(c pushCall) string { return c.Payload }},
		{"webpush", `push.webpush.send('t', {title: 'x'}, ` + ok + `)`, "ok 1", func(c pushCall) string { return c.Platform + " " + c.Payload }},
		{"template", `push.send('_UserId:Google:1', {msg: 'hi', n: 5, skip: null}, ` + ok + `)`, "ok 2",
			func(c pushCall) string {
				b, _ := json.Marshal(c.Props)
				return c.Kind + " " + fmt.Sprint(c.Target) + " " + string(b)
			}},
		{"template node callback", `push.send(null, '{"msg":"x"}', function (err, r) { done(err ? 'err' : 'ok ' + r.queued); })`, "ok 2", nil},
		{"bad expression to error callback", `push.send('a $ b', {}, ` + ok + `)`, `error invalid tag expression "a $ b": character "$" is not allowed in a tag at position 3`, nil},
		{"bad expression throws", `try { push.apns.send('a $ b', {alert: 'x'}); } catch (e) { done('thrown ' + e.message); }`, `thrown invalid tag expression "a $ b": character "$" is not allowed in a tag at position 3`, nil},
		{"oversized", `push.apns.send('t', {alert: new Array(200).join('x')}, ` + ok + `)`, "error push: apns payload: payload of 101 bytes exceeds 100", nil},
		{"bad wns template args", `try { push.wns.sendToastText02('t', 'only one'); } catch (e) { done(e.message.slice(0, 60)); }`, "The ToastText02 WNS notification type requires 2 text parame", nil},
		{"bad badge", `try { push.wns.sendBadge('t', 'nope'); } catch (e) { done(e.message.slice(0, 40)); }`, "The badge value must be either an intege", nil},
		{"mpns retired", `push.mpns.sendToast('c', {text1: 'x'}, ` + ok + `)`, "error MPNS was retired by Microsoft in 2019: send to Windows devices with push.wns", nil},
		{"mpns retired throws", `try { push.mpns.sendTile('c', {}); } catch (e) { done(e.message.slice(0, 17)); }`, "MPNS was retired ", nil},
		{"bad target", `try { push.apns.send(5, {alert: 'x'}); } catch (e) { done(e.message.slice(0, 24)); }`, "push: the target must be", nil},
		{"keys", `done(Object.keys(push).sort().join(','))`, "apns,gcm,mpns,send,webpush,wns", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(rec.calls)
			if got := evalJS(t, e, c.src); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if c.check == nil {
				return
			}
			if len(rec.calls) != before+1 {
				t.Fatalf("%d sends recorded", len(rec.calls)-before)
			}
			t.Logf("%s", c.check(rec.last()))
			want := map[string]string{
				"apns fields":             `apns news && !sport {"aps":{"alert":"Hi","badge":3,"sound":"ping.aiff"},"id":7} 2033-05-18T03:33:20Z`,
				"apns aps":                `true {"aps":{"alert":"x"},"custom":1}`,
				"gcm string":              `fcm [a b] {"data":{"message":"hello"}}`,
				"gcm object":              `{"data":{"title":"x"}}`,
				"gcm full":                `{"data":{"m":"1"},"notification":{"title":"T"}}`,
				"wns toast":               `<toast duration="long" launch="x=1"><visual><binding template="ToastText02"><text id="1">A &amp; B</text><text id="2">&lt;2&gt;</text></binding></visual><audio src="ms-winsoundevent:Notification.IM"/></toast> wns/toast`,
				"wns tile strings":        `<tile><visual><binding template="TileWideImageAndText01"><image id="1" src="img.png" alt="alt"/><text id="1">caption</text></binding></visual></tile> wns/tile`,
				"wns badge":               `<badge value="alert" version="1"/> wns/badge`,
				"wns raw":                 `{"k":1} wns/raw cache`,
				"wns multi-binding toast": `<tile><visual><binding template="TileSquareText04"><text id="1">s</text></binding><binding template="TileWideText03"><text id="1">w</text></binding></visual></tile>`,
				"webpush":                 `webpush {"title":"x"}`,
				"template":                `template _UserId:Google:1 {"msg":"hi","n":"5"}`,
			}[c.name]
			if got := c.check(rec.last()); got != want {
				t.Fatalf("sent\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestPushNotConfigured keeps the original's legacy behaviour when no platform has credentials.
func TestPushNotConfigured(t *testing.T) {
	e := pushEngine(t, &recordingPush{}, nil)
	if got := evalJS(t, e, `done(Object.keys(push).sort().join(',') + ' ' + typeof push.send)`); got != "apns,gcm,mpns,wns undefined" {
		t.Fatal(got)
	}
	if got := evalJS(t, e, `try { push.apns.send('t', {}); } catch (e) { done(e.message); }`); got != "push is not configured" {
		t.Fatal(got)
	}
	// One platform configured: the others say so.
	e = pushEngine(t, &recordingPush{platforms: []string{"apns"}}, nil)
	if got := evalJS(t, e, `push.gcm.send('t', 'x', {error: function (e) { done(e.message); }})`); got != "push is not configured for fcm (no credentials)" {
		t.Fatal(got)
	}
}

func TestPushRegisterHook(t *testing.T) {
	e := pushEngine(t, &recordingPush{platforms: []string{"apns"}}, map[string]string{
		"extensions/push.js": `exports.register = function (registration, context, done) {
  if (registration.tags.indexOf('forbidden') >= 0) { done(new Error('no forbidden tag')); return; }
  if (context.user.level === 'authenticated') registration.tags.push('user-' + context.user.userId.split(':')[0]);
  registration.tags.push('hooked');
  setTimeout(function () { done(); }, 1);
};`,
	})
	if !e.HasPushHook() {
		t.Fatal("HasPushHook = false")
	}
	user := &auth.Caller{Level: auth.Authenticated, Claims: &token.Claims{UID: "Google:42"}}
	out, err := e.PushRegister(context.Background(), map[string]any{"platform": "apns", "deviceId": "d", "tags": []any{"a"}}, user)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if string(b) != `{"deviceId":"d","platform":"apns","tags":["a","user-Google","hooked"]}` {
		t.Fatalf("hook returned %s", b)
	}
	_, err = e.PushRegister(context.Background(), map[string]any{"tags": []any{"forbidden"}}, nil)
	if !errors.Is(err, ErrPushRegistration) || !strings.Contains(err.Error(), "no forbidden tag") {
		t.Fatalf("refusal: %v", err)
	}
	plain := pushEngine(t, nil, nil)
	if out, err := plain.PushRegister(context.Background(), map[string]any{"x": 1}, nil); err != nil || out["x"] != 1 {
		t.Fatalf("without push.js: %v %v", out, err)
	}
}
