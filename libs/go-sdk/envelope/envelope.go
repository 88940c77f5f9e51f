// Package envelope puts the contract's headers on NATS messages: `arc-schema` on every one,
// W3C trace context (traceparent, tracestate) when the caller's context holds a span, so one
// trace spans the Go caller, the brain and the TTS.
package envelope

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// SchemaHeader names a message's schema, e.g. "brain.request/1".
const SchemaHeader = "arc-schema"

// The W3C propagator itself, not otel's global one: the global default propagates nothing,
// and the contract requires trace context whatever the application configured.
var propagator = propagation.TraceContext{}

// headerCarrier writes header names exactly as given. nats.Header's own Set keeps them too,
// but propagation.HeaderCarrier would canonicalise them to "Traceparent", which the Python
// services' lookups ("traceparent") would miss.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[key] = []string{value} }

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Headers are the headers of an outgoing message of schema. Untraced calls skip the
// propagator: this is on the path of every request.
func Headers(ctx context.Context, schema string) nats.Header {
	h := nats.Header{SchemaHeader: []string{schema}}
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagator.Inject(ctx, headerCarrier(h))
	}
	return h
}

// Extract is the context of the remote span a message carries, to parent the work it starts.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// Schema is the message's arc-schema header, "" when it has none.
func Schema(h nats.Header) string {
	if v := h[SchemaHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}
