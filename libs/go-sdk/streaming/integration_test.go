package streaming_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/arc-voice/arc/libs/go-sdk/streaming"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// The servers are started by tests/integration/go_sdk (pytest): NATS, the real brain (skills,
// on ARC_TEST_BRAIN_PREFIX), a brain whose model streams slowly (ARC_TEST_SLOW_BRAIN_PREFIX)
// and the real TTS worker (ARC_TEST_TTS_PREFIX). Without them these tests skip.
func env(t *testing.T, names ...string) []string {
	t.Helper()
	values := make([]string, len(names))
	for i, name := range names {
		values[i] = os.Getenv(name)
		if values[i] == "" {
			t.Skipf("%s is not set: run through pytest tests/integration/go_sdk", name)
		}
	}
	return values
}

func connect(t *testing.T) *nats.Conn {
	t.Helper()
	url := env(t, "ARC_TEST_NATS_URL")[0]
	nc, err := nats.Connect(url, nats.Name("go-sdk-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func client(t *testing.T, nc *nats.Conn, prefix string) *streaming.Client {
	t.Helper()
	c, err := streaming.NewClient(nc, streaming.Options{SubjectPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var ids atomic.Int64

func newID(kind string) string {
	return fmt.Sprintf("go-%s-%d-%d", kind, time.Now().UnixNano(), ids.Add(1))
}

func brainRequest(text string) wire.BrainRequest {
	return wire.BrainRequest{SessionID: newID("s"), TurnID: newID("t"), UserID: "go-user", Text: text}
}

func TestIntegrationAskStreamsSpeakableDeltas(t *testing.T) {
	nc := connect(t)
	c := client(t, nc, env(t, "ARC_TEST_BRAIN_PREFIX")[0])
	stream, err := c.Ask(context.Background(), brainRequest("repeat after me: Dr. Smith paid $3.50. Then he left. See you!"))
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for chunk, err := range stream.Chunks() {
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Kind != wire.KindDelta || chunk.Seq != len(texts) {
			t.Fatalf("chunk %v", chunk)
		}
		texts = append(texts, chunk.Text)
	}
	want := []string{"Dr. Smith paid $3.50.", " Then he left.", " See you!"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Fatalf("deltas %q, want %q", texts, want)
	}
	if end := stream.End(); end == nil || end.Seq != 3 || end.Reason != "" {
		t.Fatalf("end %v", end)
	}
	// A stream that ended keeps answering io.EOF.
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after end: %v", err)
	}
	greeting, err := mustAsk(t, c, "hello there").Text()
	if err != nil || !strings.HasPrefix(greeting, "Hello!") {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
}

func mustAsk(t *testing.T, c *streaming.Client, text string) *streaming.Stream {
	t.Helper()
	s, err := c.Ask(context.Background(), brainRequest(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIntegrationBrainErrorsAreTyped(t *testing.T) {
	nc := connect(t)
	prefix := env(t, "ARC_TEST_BRAIN_PREFIX")[0]
	c := client(t, nc, prefix)
	// Refused here, with the brain's code, and never sent.
	sent, err := nc.SubscribeSync(wire.Prefixed(prefix, wire.SubjectBrainRequest))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ask(context.Background(), brainRequest(strings.Repeat("x", 4001)))
	if wire.CodeOf(err) != wire.TooLarge {
		t.Fatalf("4001 characters: %v", err)
	}
	_, err = c.Ask(context.Background(), brainRequest(" \n "))
	if wire.CodeOf(err) != wire.BadRequest {
		t.Fatalf("blank: %v", err)
	}
	if msg, err := sent.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("an invalid request was sent: %q", msg.Data)
	}
	// Refused by the brain: a deadline the turn cannot meet.
	req := brainRequest("what time is it?")
	req.DeadlineMS = 1
	stream, err := c.Ask(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Text()
	var arcErr *wire.Error
	if !errors.As(err, &arcErr) || arcErr.Code != wire.Timeout || !strings.Contains(arcErr.Message, "deadline") {
		t.Fatalf("deadline 1 ms: %v", err)
	}
}

// Every supported rate comes back as whole frames at that rate (the client checks each chunk;
// this adds up the audio).
func TestIntegrationSpeakWholeFramesAtEachRate(t *testing.T) {
	nc := connect(t)
	c := client(t, nc, env(t, "ARC_TEST_TTS_PREFIX")[0])
	frames := map[int]int{8000: 20, 16000: 10, 22050: 40, 24000: 20, 48000: 20}
	for _, rate := range wire.SampleRates {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			req := wire.TTSRequest{SessionID: newID("s"), TurnID: newID("t"), Text: "Hello from Go.", SampleRate: rate, FrameMS: frames[rate]}
			stream, err := c.Speak(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			total, chunks := 0, 0
			for chunk, err := range stream.Chunks() {
				if err != nil {
					t.Fatal(err)
				}
				if chunk.Kind != wire.KindAudio || chunk.SampleRate != rate {
					t.Fatalf("chunk %v at %d Hz", chunk, chunk.SampleRate)
				}
				total += len(chunk.PCM)
				chunks++
			}
			frame := wire.FrameBytes(rate, frames[rate])
			seconds := float64(total) / float64(2*rate)
			if chunks == 0 || total%frame != 0 || seconds < 0.4 || seconds > 5 {
				t.Fatalf("%d chunks, %d bytes (%.2f s) of %d-byte frames", chunks, total, seconds, frame)
			}
		})
	}
	_, err := c.Speak(context.Background(), wire.TTSRequest{SessionID: "s", TurnID: "t", Text: "hi", SampleRate: 44100})
	if wire.CodeOf(err) != wire.Unsupported {
		t.Fatalf("44100 Hz: %v", err)
	}
}

// Cancelling the context publishes brain.cancel at once; Recv returns `cancelled` at once,
// and the brain ends the turn (end, reason cancelled) within 50 ms.
func TestIntegrationCancelledContextCancelsTheTurn(t *testing.T) {
	nc := connect(t)
	prefix := env(t, "ARC_TEST_SLOW_BRAIN_PREFIX")[0]
	c := client(t, nc, prefix)
	observer := connect(t)
	cancels, err := observer.SubscribeSync(wire.Prefixed(prefix, wire.SubjectBrainCancel))
	if err != nil {
		t.Fatal(err)
	}
	replies, err := observer.SubscribeSync(c.Inbox() + ".*")
	if err != nil {
		t.Fatal(err)
	}
	if err := observer.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := brainRequest("talk for a long time " + newID("x"))
	stream, err := c.Ask(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cancelledAt := time.Now()
	cancel()
	_, err = stream.Recv()
	returned := time.Since(cancelledAt)
	if wire.CodeOf(err) != wire.Cancelled || returned > 50*time.Millisecond {
		t.Fatalf("Recv after cancel: %v after %s", err, returned)
	}
	msg, err := cancels.NextMsg(time.Second)
	if err != nil {
		t.Fatal("no brain.cancel was published")
	}
	var got wire.Cancel
	if err := wire.Decode(msg.Data, &got); err != nil || got.TurnID != req.TurnID || got.V != 1 {
		t.Fatalf("cancel %+v %v", got, err)
	}
	if schema := msg.Header.Get("arc-schema"); schema != wire.SchemaCancel {
		t.Fatalf("cancel schema %q", schema)
	}
	// The server's side of it: read the turn's remaining replies off the inbox.
	for {
		msg, err := replies.NextMsg(time.Second)
		if err != nil {
			t.Fatal("the brain never ended the cancelled turn")
		}
		chunk, err := wire.DecodeReplyChunk(msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Terminal() {
			ended := time.Since(cancelledAt)
			if chunk.Kind != wire.KindEnd || chunk.Reason != "cancelled" || ended > 50*time.Millisecond {
				t.Fatalf("terminal %v after %s", chunk, ended)
			}
			t.Logf("Recv returned %s after cancel; the brain's end(cancelled) arrived after %s", returned, ended)
			return
		}
	}
}

func TestIntegrationContextDeadlineIsTimeoutAndCancels(t *testing.T) {
	nc := connect(t)
	prefix := env(t, "ARC_TEST_SLOW_BRAIN_PREFIX")[0]
	c := client(t, nc, prefix)
	cancels, _ := nc.SubscribeSync(wire.Prefixed(prefix, wire.SubjectBrainCancel))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := brainRequest("talk for a long time " + newID("x"))
	stream, err := c.Ask(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Text()
	if wire.CodeOf(err) != wire.Timeout {
		t.Fatalf("got %v", err)
	}
	msg, err := cancels.NextMsg(time.Second)
	if err != nil {
		t.Fatal("no brain.cancel after the deadline")
	}
	var got wire.Cancel
	if wire.Decode(msg.Data, &got) != nil || got.TurnID != req.TurnID {
		t.Fatalf("cancel %+v", got)
	}
}

// A traced caller's span travels in the request headers as W3C traceparent.
func TestIntegrationTraceContextInHeaders(t *testing.T) {
	nc := connect(t)
	prefix := env(t, "ARC_TEST_BRAIN_PREFIX")[0]
	c := client(t, nc, prefix)
	seen, _ := nc.SubscribeSync(wire.Prefixed(prefix, wire.SubjectBrainRequest))
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	stream, err := c.Ask(ctx, brainRequest("hello there"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Text(); err != nil {
		t.Fatal(err)
	}
	msg, err := seen.NextMsg(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if got := msg.Header.Get("traceparent"); got != want || msg.Header.Get("arc-schema") != wire.SchemaBrainRequest {
		t.Fatalf("headers %v", msg.Header)
	}
}
