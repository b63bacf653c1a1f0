// Package telemetry sets up OpenTelemetry tracing: off by default (a no-op provider), or spans
// exported over OTLP/HTTP to a collector, sampled parent-based with a configurable ratio.
package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Options configure tracing.
type Options struct {
	Endpoint    string  // OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces; "" = off
	SampleRatio float64 // 0..1
	ServiceName string
	Version     string
}

// New returns the tracer provider and a shutdown function that flushes pending spans.
func New(ctx context.Context, o Options) (trace.TracerProvider, func(context.Context) error, error) {
	if o.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", o.ServiceName),
		attribute.String("service.version", o.Version),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return tp, tp.Shutdown, nil
}
