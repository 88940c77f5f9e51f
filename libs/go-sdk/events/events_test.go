package events_test

import (
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/arc-voice/arc/libs/go-sdk/events"
	"github.com/arc-voice/arc/libs/go-sdk/internal/golden"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

var eventFiles = map[string]string{
	"conversation.turn":   "event_conversation_turn",
	"session.started":     "event_session_started",
	"session.ended":       "event_session_ended",
	"track.published":     "event_track_published",
	"track.unpublished":   "event_track_unpublished",
	"announcement.spoken": "event_announcement_spoken",
	"turn.metrics":        "event_turn_metrics",
}

// Every durable event arc_common writes decodes into its Go schema and encodes back to the
// same JSON content.
func TestGoldenDurableEventsRoundTrip(t *testing.T) {
	for typ, file := range eventFiles {
		t.Run(typ, func(t *testing.T) {
			e := golden.RoundTrip(t, file+".json", events.DecodeJSON, events.EncodeJSON)
			if e.Header().Type != typ || e.Header().V != 1 {
				t.Fatalf("decoded as %s/v%d", e.Header().Type, e.Header().V)
			}
		})
	}
}

// Lifecycle events as the voice worker publishes them on NATS (MessagePack).
func TestGoldenLifecycleEventsRoundTrip(t *testing.T) {
	for _, typ := range []string{"session.started", "session.ended", "track.published", "track.unpublished"} {
		t.Run(typ, func(t *testing.T) {
			golden.RoundTrip(t, eventFiles[typ]+".msgpack", events.DecodeMsgpack,
				func(e events.Event) ([]byte, error) { return msgpack.Marshal(e) })
		})
	}
}

func TestDecodedValues(t *testing.T) {
	data, _ := golden.Read("event_session_ended.json")
	e, err := events.DecodeJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	ended, ok := e.(*events.SessionEnded)
	if !ok || ended.UserID != nil || ended.Reason == nil || *ended.Reason != "hangup" || ended.Session() != "s-1" {
		t.Fatalf("%#v", e)
	}
	if got := ended.OccurredAt.String(); got != "2026-12-01T09:30:15.123456Z" {
		t.Fatalf("occurred_at %s", got)
	}
	data, _ = golden.Read("event_turn_metrics.json")
	e, _ = events.DecodeJSON(data)
	m := e.(*events.TurnMetrics)
	if m.STTMS == nil || *m.STTMS != 80.5 || m.TTSFirstChunkMS != nil || events.TopicOf(m) != events.TopicSessionMetrics {
		t.Fatalf("%#v", m)
	}
}

func TestBadEventsAreBadRequest(t *testing.T) {
	started, _ := golden.Read("event_session_started.json")
	for name, data := range map[string]string{
		"not json":        "{",
		"unknown type":    `{"type":"session.exploded","v":1}`,
		"unknown version": `{"type":"session.started","v":9}`,
		"bad uuid":        strings.Replace(string(started), `"event_id":"`, `"event_id":"x`, 1),
		"naive time":      strings.Replace(string(started), `.123456Z"`, `.123456"`, 1),
		"empty room":      strings.Replace(string(started), `"room":"lobby"`, `"room":""`, 1),
		"room as number":  strings.Replace(string(started), `"room":"lobby"`, `"room":5`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if data == string(started) {
				t.Fatal("the replacement did not apply")
			}
			_, err := events.DecodeJSON([]byte(data))
			if wire.CodeOf(err) != wire.BadRequest {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestNewFillsIdTimeAndSchema(t *testing.T) {
	user := "u-9"
	e := events.New(&events.SessionStarted{SessionID: "s-9", Room: "lobby", UserID: &user})
	if e.Type != "session.started" || e.V != 1 || e.Validate() != nil {
		t.Fatalf("%+v %v", e, e.Validate())
	}
	data, err := events.EncodeJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.DecodeJSON(data)
	if err != nil || back.Header().EventID != e.EventID {
		t.Fatalf("%v %v", back, err)
	}
}

// Announcements: Python's decode_announcement and Go's ParseAnnouncement agree on every case.
func TestAnnouncementValidationMatchesPython(t *testing.T) {
	golden.AnswersAsPython(t, 3, map[string]func([]byte) error{
		"announcement": func(b []byte) error { _, err := events.ParseAnnouncement(b); return err },
	})
	data, _ := golden.Read("announcement.msgpack")
	a, err := events.ParseAnnouncement(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := msgpack.Marshal(a)
	if err := golden.SameMsgpack(data, again); err != nil {
		t.Fatal(err)
	}
}
