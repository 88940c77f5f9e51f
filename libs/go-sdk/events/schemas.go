// Package events holds Arc's events for Go: announcements to be spoken in a room, the
// lifecycle events the voice worker publishes live on NATS, and the durable event schemas
// (arc_common.events.schemas) as they travel on Pulsar.
package events

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Pulsar topics of the durable events.
const (
	TopicConversation   = "persistent://arc/events/conversation"
	TopicAgentLifecycle = "persistent://arc/events/agent-lifecycle"
	TopicSessionMetrics = "persistent://arc/analytics/session-metrics"
)

// Topics are every durable topic.
var Topics = []string{TopicConversation, TopicAgentLifecycle, TopicSessionMetrics}

// Time is an event's UTC instant. On both wires it is an ISO 8601 string with an offset
// (msgspec writes and insists on one); MessagePack's own timestamp type would not decode on
// the Python side.
type Time struct{ time.Time }

const isoLayout = "2006-01-02T15:04:05.999999Z07:00"

func (t Time) String() string { return t.UTC().Format(isoLayout) }

func parseTime(s string) (Time, error) {
	parsed, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Time{}, fmt.Errorf("occurred_at %q is not an ISO 8601 time with an offset", s)
	}
	return Time{parsed.UTC()}, nil
}

func (t Time) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

func (t *Time) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	parsed, err := parseTime(s)
	*t = parsed
	return err
}

func (t Time) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeString(t.String()) }

func (t *Time) DecodeMsgpack(dec *msgpack.Decoder) error {
	s, err := dec.DecodeString()
	if err != nil {
		return err
	}
	parsed, err := parseTime(s)
	*t = parsed
	return err
}

// Base holds what every durable event has: a unique id (consumers de-duplicate on it), when
// it happened and its session. Type and V name the schema on the wire.
type Base struct {
	Type       string `json:"type" msgpack:"type"`
	V          int    `json:"v" msgpack:"v"`
	EventID    string `json:"event_id" msgpack:"event_id"`
	OccurredAt Time   `json:"occurred_at" msgpack:"occurred_at"`
}

// Event is any durable event schema.
type Event interface {
	// Header is the common part: type, version, id and time.
	Header() *Base
	// Session is the session the event belongs to, "" when none.
	Session() string
	// Validate applies the schema's limits; the error is a `bad_request` *wire.Error.
	Validate() error
	schema() schemaKey
}

func (b *Base) Header() *Base { return b }

// New fills a fresh event id, the current time and the schema name of e.
func New[E Event](e E) E {
	h := e.Header()
	h.EventID = uuid.NewString()
	h.OccurredAt = Time{time.Now().UTC()}
	key := e.schema()
	h.Type, h.V = key.typ, key.v
	return e
}

// ConversationTurn is one user turn and the assistant's answer to it.
type ConversationTurn struct {
	Base
	SessionID     string  `json:"session_id" msgpack:"session_id"`
	TurnID        string  `json:"turn_id" msgpack:"turn_id"`
	UserID        string  `json:"user_id" msgpack:"user_id"`
	UserText      string  `json:"user_text" msgpack:"user_text"`
	AssistantText string  `json:"assistant_text" msgpack:"assistant_text"`
	Interrupted   bool    `json:"interrupted" msgpack:"interrupted"`
	Route         *string `json:"route" msgpack:"route"`
}

type SessionStarted struct {
	Base
	SessionID string  `json:"session_id" msgpack:"session_id"`
	Room      string  `json:"room" msgpack:"room"`
	UserID    *string `json:"user_id" msgpack:"user_id"`
}

type SessionEnded struct {
	Base
	SessionID string  `json:"session_id" msgpack:"session_id"`
	Room      string  `json:"room" msgpack:"room"`
	UserID    *string `json:"user_id" msgpack:"user_id"`
	Reason    *string `json:"reason" msgpack:"reason"`
}

// Track is a track published into or unpublished from a room.
type Track struct {
	Base
	SessionID   string `json:"session_id" msgpack:"session_id"`
	Room        string `json:"room" msgpack:"room"`
	Participant string `json:"participant" msgpack:"participant"`
	TrackSID    string `json:"track_sid" msgpack:"track_sid"`
	Kind        string `json:"kind" msgpack:"kind"`
}

type TrackPublished struct{ Track }

type TrackUnpublished struct{ Track }

// AnnouncementSpoken: an announcement was spoken into a room; it may belong to no session.
type AnnouncementSpoken struct {
	Base
	SessionID *string `json:"session_id" msgpack:"session_id"`
	Room      string  `json:"room" msgpack:"room"`
	Text      string  `json:"text" msgpack:"text"`
	Category  string  `json:"category" msgpack:"category"`
	Priority  int     `json:"priority" msgpack:"priority"`
	Source    string  `json:"source" msgpack:"source"`
}

// TurnMetrics is the latency breakdown of one voice turn in milliseconds; nil where a stage
// did not run or was not measured.
type TurnMetrics struct {
	Base
	SessionID         string   `json:"session_id" msgpack:"session_id"`
	TurnID            string   `json:"turn_id" msgpack:"turn_id"`
	EndOfSpeechMS     *float64 `json:"end_of_speech_ms" msgpack:"end_of_speech_ms"`
	STTMS             *float64 `json:"stt_ms" msgpack:"stt_ms"`
	BrainFirstDeltaMS *float64 `json:"brain_first_delta_ms" msgpack:"brain_first_delta_ms"`
	TTSFirstChunkMS   *float64 `json:"tts_first_chunk_ms" msgpack:"tts_first_chunk_ms"`
	TransportMS       *float64 `json:"transport_ms" msgpack:"transport_ms"`
	VoiceToVoiceMS    *float64 `json:"voice_to_voice_ms" msgpack:"voice_to_voice_ms"`
}

func (e *ConversationTurn) Session() string   { return e.SessionID }
func (e *SessionStarted) Session() string     { return e.SessionID }
func (e *SessionEnded) Session() string       { return e.SessionID }
func (e *Track) Session() string              { return e.SessionID }
func (e *TurnMetrics) Session() string        { return e.SessionID }
func (e *AnnouncementSpoken) Session() string { return deref(e.SessionID) }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type schemaKey struct {
	typ string
	v   int
}

// registry maps (type, version) to its schema, as arc_common's SCHEMAS: a v2 is a new entry
// beside v1, so readers keep reading what older writers left on the topics.
var registry = map[schemaKey]func() Event{}

func init() {
	for _, newEvent := range []func() Event{
		func() Event { return &ConversationTurn{} },
		func() Event { return &SessionStarted{} },
		func() Event { return &SessionEnded{} },
		func() Event { return &TrackPublished{} },
		func() Event { return &TrackUnpublished{} },
		func() Event { return &AnnouncementSpoken{} },
		func() Event { return &TurnMetrics{} },
	} {
		registry[newEvent().schema()] = newEvent
	}
}

func (*ConversationTurn) schema() schemaKey   { return schemaKey{"conversation.turn", 1} }
func (*SessionStarted) schema() schemaKey     { return schemaKey{"session.started", 1} }
func (*SessionEnded) schema() schemaKey       { return schemaKey{"session.ended", 1} }
func (*TrackPublished) schema() schemaKey     { return schemaKey{"track.published", 1} }
func (*TrackUnpublished) schema() schemaKey   { return schemaKey{"track.unpublished", 1} }
func (*AnnouncementSpoken) schema() schemaKey { return schemaKey{"announcement.spoken", 1} }
func (*TurnMetrics) schema() schemaKey        { return schemaKey{"turn.metrics", 1} }

// TopicOf is the Pulsar topic an event type travels on.
func TopicOf(e Event) string {
	switch e.(type) {
	case *ConversationTurn:
		return TopicConversation
	case *TurnMetrics:
		return TopicSessionMetrics
	}
	return TopicAgentLifecycle
}

type header struct {
	Type string `json:"type" msgpack:"type"`
	V    int    `json:"v" msgpack:"v"`
}

func schemaFor(h header) (Event, error) {
	newEvent, ok := registry[schemaKey{h.Type, h.V}]
	if !ok {
		return nil, wire.Errorf(wire.BadRequest, "unknown event schema %s/v%d", h.Type, h.V)
	}
	return newEvent(), nil
}

// DecodeJSON decodes and validates one durable event (the JSON a Pulsar message carries);
// bytes that are not an event, an unknown type or version, or a broken schema give
// `bad_request`.
func DecodeJSON(data []byte) (Event, error) { return decode(data, json.Unmarshal) }

// DecodeMsgpack decodes and validates one lifecycle event as the voice worker publishes it
// on NATS (the same fields as on Pulsar, in MessagePack).
func DecodeMsgpack(data []byte) (Event, error) { return decode(data, msgpack.Unmarshal) }

// decode reads the header first, since it names the schema the whole message decodes into;
// both wires carry the same fields, so only the unmarshal function differs.
func decode(data []byte, unmarshal func([]byte, any) error) (Event, error) {
	var h header
	if err := unmarshal(data, &h); err != nil {
		return nil, wire.Errorf(wire.BadRequest, "not an event: %v", err)
	}
	e, err := schemaFor(h)
	if err != nil {
		return nil, err
	}
	if err := unmarshal(data, e); err != nil {
		return nil, wire.Errorf(wire.BadRequest, "invalid %s/v%d event: %v", h.Type, h.V, err)
	}
	return e, e.Validate()
}

// EncodeJSON validates e and encodes it as it travels on Pulsar.
func EncodeJSON(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// limits is a small validator that keeps the first failure, so each Validate reads as the
// list of the schema's rules.
type limits struct {
	schema string
	err    error
}

func (l *limits) fail(format string, args ...any) {
	if l.err == nil {
		l.err = wire.Errorf(wire.BadRequest, "invalid %s event: %s", l.schema, fmt.Sprintf(format, args...))
	}
}

func (l *limits) chars(field, value string, lo, hi int) {
	if n := utf8.RuneCountInString(value); n < lo || n > hi {
		l.fail("%s must be %d..%d characters, got %d", field, lo, hi, n)
	}
}

func (l *limits) optChars(field string, value *string, lo, hi int) {
	if value != nil {
		l.chars(field, *value, lo, hi)
	}
}

func (l *limits) id(field, value string)        { l.chars(field, value, 1, 128) }
func (l *limits) name(field, value string)      { l.chars(field, value, 1, 256) }
func (l *limits) optID(field string, v *string) { l.optChars(field, v, 1, 128) }

// session checks the fields a session's start and end share.
func (l *limits) session(sessionID, room string, userID *string) {
	l.id("session_id", sessionID)
	l.name("room", room)
	l.optID("user_id", userID)
}

func (l *limits) millis(field string, v *float64) {
	if v != nil && (*v < 0 || *v > 3_600_000) {
		l.fail("%s must be 0..3600000, got %v", field, *v)
	}
}

func (l *limits) base(b *Base) {
	if _, err := uuid.Parse(b.EventID); err != nil {
		l.fail("event_id %q is not a UUID", b.EventID)
	}
	if b.OccurredAt.IsZero() {
		l.fail("occurred_at is missing")
	}
}

func check(b *Base, rules func(*limits)) error {
	l := &limits{schema: fmt.Sprintf("%s/v%d", b.Type, b.V)}
	l.base(b)
	rules(l)
	return l.err
}

func (e *ConversationTurn) Validate() error {
	return check(&e.Base, func(l *limits) {
		l.id("session_id", e.SessionID)
		l.id("turn_id", e.TurnID)
		l.id("user_id", e.UserID)
		l.chars("user_text", e.UserText, 0, 16_000)
		l.chars("assistant_text", e.AssistantText, 0, 16_000)
		l.optChars("route", e.Route, 1, 256)
	})
}

func (e *SessionStarted) Validate() error {
	return check(&e.Base, func(l *limits) { l.session(e.SessionID, e.Room, e.UserID) })
}

func (e *SessionEnded) Validate() error {
	return check(&e.Base, func(l *limits) {
		l.session(e.SessionID, e.Room, e.UserID)
		l.optChars("reason", e.Reason, 1, 256)
	})
}

func (e *Track) Validate() error {
	return check(&e.Base, func(l *limits) {
		l.id("session_id", e.SessionID)
		l.name("room", e.Room)
		l.name("participant", e.Participant)
		l.id("track_sid", e.TrackSID)
		if e.Kind != "audio" && e.Kind != "video" {
			l.fail("kind must be audio or video, got %q", e.Kind)
		}
	})
}

func (e *AnnouncementSpoken) Validate() error {
	return check(&e.Base, func(l *limits) {
		l.optID("session_id", e.SessionID)
		l.name("room", e.Room)
		l.chars("text", e.Text, 1, 4000)
		l.name("category", e.Category)
		l.name("source", e.Source)
		if e.Priority < 0 || e.Priority > 1000 {
			l.fail("priority must be 0..1000, got %d", e.Priority)
		}
	})
}

func (e *TurnMetrics) Validate() error {
	return check(&e.Base, func(l *limits) {
		l.id("session_id", e.SessionID)
		l.id("turn_id", e.TurnID)
		l.millis("end_of_speech_ms", e.EndOfSpeechMS)
		l.millis("stt_ms", e.STTMS)
		l.millis("brain_first_delta_ms", e.BrainFirstDeltaMS)
		l.millis("tts_first_chunk_ms", e.TTSFirstChunkMS)
		l.millis("transport_ms", e.TransportMS)
		l.millis("voice_to_voice_ms", e.VoiceToVoiceMS)
	})
}
