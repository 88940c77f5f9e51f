package envelope_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/arc-voice/arc/libs/go-sdk/envelope"
)

func TestUntracedMessageCarriesOnlyTheSchema(t *testing.T) {
	h := envelope.Headers(context.Background(), "brain.request/1")
	if len(h) != 1 || envelope.Schema(h) != "brain.request/1" {
		t.Fatalf("%v", h)
	}
}

// The names stay lower case, as the Python services look them up, and the context survives
// the trip.
func TestTraceContextRoundTrips(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})
	h := envelope.Headers(trace.ContextWithSpanContext(context.Background(), sent), "tts.request/1")
	if got := h["traceparent"]; len(got) != 1 || got[0] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("headers %v", h)
	}
	remote := trace.SpanContextFromContext(envelope.Extract(context.Background(), h))
	if !remote.IsRemote() || remote.TraceID() != traceID || remote.SpanID() != spanID {
		t.Fatalf("extracted %v", remote)
	}
}
