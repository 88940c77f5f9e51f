package wire

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// Limits of the v1 contract, the same numbers as arc_common.wire.
const (
	Version       = 1
	IDMaxChars    = 128
	BrainTextMax  = 4000
	TTSTextMax    = 2000
	DeadlineMaxMS = 600_000
	// MaxPayloadBytes is what a streaming endpoint accepts before it answers `too_large`.
	MaxPayloadBytes = 64 * 1024

	DefaultSampleRate = 48000
	DefaultFrameMS    = 20
)

// SampleRates and FrameMS are the values tts.request accepts.
var (
	SampleRates = []int{8000, 16000, 22050, 24000, 48000}
	FrameMS     = []int{10, 20, 40}
)

// Schema names carried in the arc-schema header.
const (
	SchemaBrainRequest = "brain.request/1"
	SchemaBrainReply   = "brain.reply/1"
	SchemaTTSRequest   = "tts.request/1"
	SchemaTTSReply     = "tts.reply/1"
	SchemaCancel       = "cancel/1"
	SchemaCommit       = "brain.commit/1"
)

// Chunk kinds of a reply stream.
const (
	KindDelta = "delta"
	KindAudio = "audio"
	KindEnd   = "end"
	KindError = "error"
)

// BrainRequest is `brain.request`. Zero optional fields are left off the wire, so the
// brain applies its defaults; DeadlineMS 0 means "no deadline".
type BrainRequest struct {
	V          int    `msgpack:"v"`
	SessionID  string `msgpack:"session_id"`
	TurnID     string `msgpack:"turn_id"`
	UserID     string `msgpack:"user_id"`
	Text       string `msgpack:"text"`
	Room       string `msgpack:"room,omitempty"`
	Locale     string `msgpack:"locale,omitempty"`
	DeadlineMS int    `msgpack:"deadline_ms,omitempty"`
	// Tentative asks the brain to answer now and store the turn only on `brain.commit`
	// (preemptive generation, docs/brain.md).
	Tentative bool `msgpack:"tentative,omitempty"`
}

// TTSRequest is `tts.request`. SampleRate and FrameMS 0 mean the contract's defaults
// (48000 Hz, 20 ms).
type TTSRequest struct {
	V          int    `msgpack:"v"`
	SessionID  string `msgpack:"session_id"`
	TurnID     string `msgpack:"turn_id"`
	Text       string `msgpack:"text"`
	Voice      string `msgpack:"voice,omitempty"`
	SampleRate int    `msgpack:"sample_rate,omitempty"`
	FrameMS    int    `msgpack:"frame_ms,omitempty"`
}

// ErrorBody is the `error` of a terminal error chunk.
type ErrorBody struct {
	Code    string `msgpack:"code"`
	Message string `msgpack:"message"`
}

// ReplyChunk is one message of a reply stream: brain deltas or TTS audio, then exactly one
// terminal `end` or `error`.
type ReplyChunk struct {
	V          int        `msgpack:"v"`
	TurnID     string     `msgpack:"turn_id"`
	Seq        int        `msgpack:"seq"`
	Kind       string     `msgpack:"kind"`
	Text       string     `msgpack:"text,omitempty"`
	PCM        []byte     `msgpack:"pcm,omitempty"`
	SampleRate int        `msgpack:"sample_rate,omitempty"`
	Reason     string     `msgpack:"reason,omitempty"`
	Error      *ErrorBody `msgpack:"error,omitempty"`
}

// Terminal is true for `end` and `error`.
func (c *ReplyChunk) Terminal() bool { return c.Kind == KindEnd || c.Kind == KindError }

// Cancel is `brain.cancel` / `tts.cancel`.
type Cancel struct {
	V      int    `msgpack:"v"`
	TurnID string `msgpack:"turn_id"`
}

// Commit is `brain.commit`: the tentative turn answered the person's real turn; store it.
type Commit struct {
	V      int    `msgpack:"v"`
	TurnID string `msgpack:"turn_id"`
}

// Encode is MessagePack with the contract's field names. Encoding the SDK's own structs
// cannot fail; the error is kept for callers passing their own values.
func Encode(v any) ([]byte, error) { return msgpack.Marshal(v) }

// Decode decodes MessagePack into one of the wire structs; malformed bytes or a field of the
// wrong type give `bad_request`, as the services answer them.
func Decode(data []byte, out any) error {
	if err := msgpack.Unmarshal(data, out); err != nil {
		return Errorf(BadRequest, "payload is not a valid MessagePack message: %v", err)
	}
	return nil
}

// Python's str.strip() also treats the ASCII separators 0x1c..0x1f as white space, which
// unicode.IsSpace does not; the limits are about what the services count.
func isPythonSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// Strip trims white space as the Python services' str.strip() does.
func Strip(s string) string { return strings.TrimFunc(s, isPythonSpace) }

func checkedText(text string, limit int) (string, error) {
	trimmed := Strip(text)
	if trimmed == "" {
		return "", Errorf(BadRequest, "text is empty")
	}
	// Characters, not bytes: the services count code points.
	if n := utf8.RuneCountInString(trimmed); n > limit {
		return "", Errorf(TooLarge, "text has %d characters; the limit is %d", n, limit)
	}
	return trimmed, nil
}

// CheckID applies the contract's rule for ids (session, turn, user): 1..128 characters.
func CheckID(field, value string) error {
	n := utf8.RuneCountInString(value)
	if n < 1 || n > IDMaxChars {
		return Errorf(BadRequest, "%s must be 1..%d characters, got %d", field, IDMaxChars, n)
	}
	return nil
}

func checkVersion(v int) error {
	if v != Version {
		return Errorf(BadRequest, "v must be %d, got %d", Version, v)
	}
	return nil
}

// Checked validates the request as the brain would, returning it with its text trimmed and
// v filled in; the error is an *Error with the code the brain would answer.
func (r BrainRequest) Checked() (BrainRequest, error) {
	if r.V == 0 {
		r.V = Version
	}
	if err := checkVersion(r.V); err != nil {
		return r, err
	}
	for _, f := range [][2]string{{"session_id", r.SessionID}, {"turn_id", r.TurnID}, {"user_id", r.UserID}} {
		if err := CheckID(f[0], f[1]); err != nil {
			return r, err
		}
	}
	if r.DeadlineMS < 0 || r.DeadlineMS > DeadlineMaxMS {
		return r, Errorf(BadRequest, "deadline_ms must be 1..%d, got %d", DeadlineMaxMS, r.DeadlineMS)
	}
	text, err := checkedText(r.Text, BrainTextMax)
	if err != nil {
		return r, err
	}
	r.Text = text
	return r, nil
}

// Checked validates the request as the TTS worker would (ids, text, then rate and frame
// size), returning it with its text trimmed and v filled in.
func (r TTSRequest) Checked() (TTSRequest, error) {
	if r.V == 0 {
		r.V = Version
	}
	if err := checkVersion(r.V); err != nil {
		return r, err
	}
	for _, f := range [][2]string{{"session_id", r.SessionID}, {"turn_id", r.TurnID}} {
		if err := CheckID(f[0], f[1]); err != nil {
			return r, err
		}
	}
	text, err := checkedText(r.Text, TTSTextMax)
	if err != nil {
		return r, err
	}
	r.Text = text
	if rate := r.Rate(); !slices.Contains(SampleRates, rate) {
		return r, Errorf(Unsupported, "sample_rate %d is not one of %v", rate, SampleRates)
	}
	if ms := r.Frame(); !slices.Contains(FrameMS, ms) {
		return r, Errorf(Unsupported, "frame_ms %d is not one of %v", ms, FrameMS)
	}
	return r, nil
}

// Rate is the sample rate the worker will use: the request's, or the default.
func (r TTSRequest) Rate() int {
	if r.SampleRate == 0 {
		return DefaultSampleRate
	}
	return r.SampleRate
}

// Frame is the frame length in milliseconds the worker will use.
func (r TTSRequest) Frame() int {
	if r.FrameMS == 0 {
		return DefaultFrameMS
	}
	return r.FrameMS
}

// FrameBytes is the size of one frame of signed 16-bit mono PCM at rate and ms.
func FrameBytes(rate, ms int) int { return rate * ms / 1000 * 2 }

// DecodeReplyChunk decodes and checks one reply chunk. Bytes that are not a v1 chunk are a
// broken peer, so the error is `internal` (what arc_common's client raises), never a panic.
func DecodeReplyChunk(data []byte) (ReplyChunk, error) {
	var c ReplyChunk
	if err := msgpack.Unmarshal(data, &c); err != nil {
		return c, Errorf(Internal, "undecodable reply chunk: %v", err)
	}
	if c.V != Version {
		return c, Errorf(Internal, "reply chunk has v=%d, expected %d", c.V, Version)
	}
	switch c.Kind {
	case KindDelta, KindAudio, KindEnd, KindError:
	default:
		return c, Errorf(Internal, "reply chunk has unknown kind %q", c.Kind)
	}
	return c, nil
}

// Err is the typed error a terminal `error` chunk reports; nil for any other chunk.
func (c *ReplyChunk) Err() error {
	if c.Kind != KindError {
		return nil
	}
	if c.Error == nil {
		return Errorf(Internal, "error chunk without a body")
	}
	return ErrorFor(c.Error.Code, c.Error.Message)
}

// String keeps audio out of logs.
func (c ReplyChunk) String() string {
	return fmt.Sprintf("%s#%d(turn=%s text=%q pcm=%dB reason=%q)", c.Kind, c.Seq, c.TurnID, c.Text, len(c.PCM), c.Reason)
}

// ParseBrainRequest decodes and validates a `brain.request` payload exactly as the brain
// does, for Go code that serves or relays the contract: `too_large` past MaxPayloadBytes,
// `bad_request` for what does not decode or breaks a limit.
func ParseBrainRequest(data []byte) (BrainRequest, error) {
	var r BrainRequest
	if err := parse(data, &r, &r.V); err != nil {
		return r, err
	}
	return r.Checked()
}

// ParseTTSRequest decodes and validates a `tts.request` payload as the TTS worker does.
func ParseTTSRequest(data []byte) (TTSRequest, error) {
	var r TTSRequest
	if err := parse(data, &r, &r.V); err != nil {
		return r, err
	}
	return r.Checked()
}

func parse(data []byte, out any, v *int) error {
	if len(data) > MaxPayloadBytes {
		return Errorf(TooLarge, "request is %d bytes; the limit is %d", len(data), MaxPayloadBytes)
	}
	if err := Decode(data, out); err != nil {
		return err
	}
	// Checked fills a missing v for callers building requests; a payload must carry it.
	return checkVersion(*v)
}
