package server

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// startSpan opens the request's server span. The span carries the route template, the method and
// later the status: never the path's values, the query string, headers or the client's address, which
// may hold tokens, codes or personal data. An incoming W3C traceparent is honoured only from a
// trusted proxy, so a client cannot force its requests into the sample.
func (s *Server) startSpan(r *http.Request, info *httpx.Info, c httpx.Client) (context.Context, trace.Span) {
	ctx := r.Context()
	if !s.tracing {
		// Nothing records or propagates spans: skip the span's allocations (the returned span is
		// the context's, a non-recording one).
		return ctx, trace.SpanFromContext(ctx)
	}
	if s.proxies.trusted(c.Peer) {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	scheme := "http"
	if c.HTTPS {
		scheme = "https"
	}
	return s.tracer.Start(ctx, spanMethod(r.Method)+" "+info.Route,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", spanMethod(r.Method)),
			attribute.String("http.route", info.Route),
			attribute.String("url.scheme", scheme),
			attribute.String("gatehouse.request_id", info.RequestID),
		))
}

func endSpan(span trace.Span, method, route string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetName(spanMethod(method) + " " + route) // a handler may have renamed the route
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

func spanMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "_OTHER"
}

// isLoginRoute tells the account and login routes, whose 429s are throttled logins.
func isLoginRoute(route string) bool {
	r := strings.ToLower(route)
	return strings.HasPrefix(r, "/login") || strings.HasPrefix(r, "/.auth/login")
}
