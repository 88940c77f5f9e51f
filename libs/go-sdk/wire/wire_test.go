package wire_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/arc-voice/arc/libs/go-sdk/internal/golden"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Each golden file, written by arc_common, decodes into its Go struct and encodes back to the
// same content: a field renamed or dropped on either side fails here.
func TestGoldenMessagesRoundTrip(t *testing.T) {
	cases := map[string]func() any{
		"brain_request.msgpack":         func() any { return &wire.BrainRequest{} },
		"brain_request_minimal.msgpack": func() any { return &wire.BrainRequest{} },
		"tts_request.msgpack":           func() any { return &wire.TTSRequest{} },
		"tts_request_defaults.msgpack":  func() any { return &wire.TTSRequest{} },
		"reply_delta.msgpack":           func() any { return &wire.ReplyChunk{} },
		"reply_audio.msgpack":           func() any { return &wire.ReplyChunk{} },
		"reply_end.msgpack":             func() any { return &wire.ReplyChunk{} },
		"reply_end_cancelled.msgpack":   func() any { return &wire.ReplyChunk{} },
		"reply_error.msgpack":           func() any { return &wire.ReplyChunk{} },
		"cancel.msgpack":                func() any { return &wire.Cancel{} },
		"commit.msgpack":                func() any { return &wire.Commit{} },
	}
	for name, newValue := range cases {
		t.Run(name, func(t *testing.T) {
			decode := func(data []byte) (any, error) {
				v := newValue()
				return v, wire.Decode(data, v)
			}
			golden.RoundTrip(t, name, decode, wire.Encode)
		})
	}
}

func TestGoldenValuesLandInTheirFields(t *testing.T) {
	data, _ := golden.Read("brain_request.msgpack")
	req, err := wire.ParseBrainRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.BrainRequest{V: 1, SessionID: "s-1", TurnID: "t-1", UserID: "u-1", Text: "What time is it?",
		Room: "lobby", Locale: "en-US", DeadlineMS: 8000, Tentative: true}
	if req != want {
		t.Fatalf("got %+v, want %+v", req, want)
	}
	data, _ = golden.Read("tts_request_defaults.msgpack")
	tts, err := wire.ParseTTSRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	if tts.Rate() != 48000 || tts.Frame() != 20 {
		t.Fatalf("defaults: %d Hz, %d ms", tts.Rate(), tts.Frame())
	}
	data, _ = golden.Read("reply_audio.msgpack")
	chunk, err := wire.DecodeReplyChunk(data)
	if err != nil {
		t.Fatal(err)
	}
	if chunk.Kind != wire.KindAudio || chunk.SampleRate != 24000 || len(chunk.PCM) != wire.FrameBytes(24000, 20) {
		t.Fatalf("audio chunk: %v at %d Hz", chunk, chunk.SampleRate)
	}
	data, _ = golden.Read("reply_error.msgpack")
	chunk, err = wire.DecodeReplyChunk(data)
	if err != nil {
		t.Fatal(err)
	}
	var arcErr *wire.Error
	if !errors.As(chunk.Err(), &arcErr) || arcErr.Code != wire.TooLarge || !strings.Contains(arcErr.Message, "4000") {
		t.Fatalf("error chunk: %v", chunk.Err())
	}
	data, _ = golden.Read("reply_end_cancelled.msgpack")
	chunk, _ = wire.DecodeReplyChunk(data)
	if !chunk.Terminal() || chunk.Reason != "cancelled" {
		t.Fatalf("end chunk: %v", chunk)
	}
}

// The codes Python's real request parsing gave each payload (request_cases.json) are the
// codes Go's validation gives.
func TestRequestValidationMatchesPython(t *testing.T) {
	golden.AnswersAsPython(t, 10, map[string]func([]byte) error{
		"brain": func(b []byte) error { _, err := wire.ParseBrainRequest(b); return err },
		"tts":   func(b []byte) error { _, err := wire.ParseTTSRequest(b); return err },
	})
}

func TestPayloadLimitIsTooLarge(t *testing.T) {
	_, err := wire.ParseBrainRequest(make([]byte, wire.MaxPayloadBytes+1))
	if wire.CodeOf(err) != wire.TooLarge {
		t.Fatalf("got %v", err)
	}
}

func TestCheckedTrimsAndFillsVersion(t *testing.T) {
	req, err := wire.BrainRequest{SessionID: "s", TurnID: "t", UserID: "u", Text: "\x1c  hi there \n"}.Checked()
	if err != nil || req.Text != "hi there" || req.V != 1 {
		t.Fatalf("%+v %v", req, err)
	}
	_, err = wire.TTSRequest{SessionID: "s", TurnID: "t", Text: "hi", SampleRate: 44100}.Checked()
	if wire.CodeOf(err) != wire.Unsupported {
		t.Fatalf("44100 Hz: %v", err)
	}
}

func TestErrorForAndRetryable(t *testing.T) {
	for _, code := range wire.Codes {
		err := wire.ErrorFor(string(code), "m")
		if err.Code != code || err.Message != "m" {
			t.Fatalf("%s: %+v", code, err)
		}
		want := code == wire.Busy || code == wire.Timeout || code == wire.Internal
		if err.Retryable() != want {
			t.Fatalf("%s retryable=%v", code, err.Retryable())
		}
	}
	unknown := wire.ErrorFor("exploded", "boom")
	if unknown.Code != wire.Internal || unknown.Message != "exploded: boom" {
		t.Fatalf("unknown code: %+v", unknown)
	}
	if !errors.Is(unknown, &wire.Error{Code: wire.Internal}) || errors.Is(unknown, &wire.Error{Code: wire.Busy}) {
		t.Fatal("errors.Is must match on the code")
	}
}

// Whatever bytes arrive as a reply, decoding gives a chunk or an `internal` error, never a
// panic.
func TestUndecodableRepliesAreTypedErrors(t *testing.T) {
	good, _ := golden.Read("reply_delta.msgpack")
	inputs := [][]byte{nil, {}, {0xc1}, []byte("not msgpack"), {0x93, 1, 2, 3}, good[:len(good)/2]}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := append([]byte(nil), good...)
		for range 1 + r.IntN(4) {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		inputs = append(inputs, b)
	}
	failures := 0
	for _, in := range inputs {
		_, err := wire.DecodeReplyChunk(in)
		if err != nil {
			failures++
			if wire.CodeOf(err) != wire.Internal {
				t.Fatalf("%x: %v", in, err)
			}
		}
	}
	if failures < 6 {
		t.Fatalf("only %d of %d mangled replies were refused", failures, len(inputs))
	}
}

func FuzzDecodeReplyChunk(f *testing.F) {
	good, _ := golden.Read("reply_audio.msgpack")
	f.Add(good)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := wire.DecodeReplyChunk(data)
		if err != nil && wire.CodeOf(err) != wire.Internal {
			t.Fatal(err)
		}
	})
}
