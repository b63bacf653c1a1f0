package platform_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse/internal/push"
)

// BenchmarkSend measures deliveries per second from one platform to its fake on loopback, 8
// goroutines per CPU (the fakes' own checks included: the APNs fake verifies an ES256 signature per
// request, the Web Push fake an ES256 signature and an ECDH + AES-GCM decryption).
//
//	go test ./internal/push/platform -run XXX -bench Send -benchtime 2000x
func BenchmarkSend(b *testing.B) {
	b.Run("apns", func(b *testing.B) {
		a, _, _ := newAPNs(b)
		benchSend(b, a, push.Delivery{ID: "b", Channel: apnsToken, Payload: []byte(`{"aps":{"alert":"bench"}}`)})
	})
	b.Run("fcm", func(b *testing.B) {
		f, _ := newFCM(b)
		benchSend(b, f, push.Delivery{ID: "b", Channel: fcmToken, Payload: []byte(`{"data":{"m":"bench"}}`)})
	})
	b.Run("wns", func(b *testing.B) {
		w, fake := newWNS(b)
		benchSend(b, w, push.Delivery{ID: "b", Channel: fake.Channel("d"), Payload: []byte(toast)})
	})
	b.Run("webpush", func(b *testing.B) {
		w, fake := newWebPush(b)
		benchSend(b, w, push.Delivery{ID: "b", Channel: fake.Subscribe("s", w.PublicKey()), Payload: []byte(`{"title":"bench"}`)})
	})
}

func benchSend(b *testing.B, p push.Platform, d push.Delivery) {
	ctx := context.Background()
	if err := p.Send(ctx, d); err != nil { // warm: tokens, connections
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Send(ctx, d); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
