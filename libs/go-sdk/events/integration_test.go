package events_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arc-voice/arc/libs/go-sdk/events"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// These run from tests/integration/go_sdk (pytest), which starts NATS and, on the Python
// side, reads or writes the other end with the voice worker's own code.
func natsFromEnv(t *testing.T, names ...string) (*nats.Conn, []string) {
	t.Helper()
	values := make([]string, len(names))
	for i, name := range append([]string{"ARC_TEST_NATS_URL"}, names...) {
		v := os.Getenv(name)
		if v == "" {
			t.Skipf("%s is not set: run through pytest tests/integration/go_sdk", name)
		}
		if i > 0 {
			values[i-1] = v
		}
	}
	nc, err := nats.Connect(os.Getenv("ARC_TEST_NATS_URL"), nats.Name("go-sdk-events-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, values
}

// pytest decodes what this publishes with arc_voice.announcements.decode_announcement.
func TestIntegrationAnnounce(t *testing.T) {
	nc, v := natsFromEnv(t, "ARC_TEST_ANNOUNCE_PREFIX", "ARC_TEST_ANNOUNCE_ROOM")
	prefix, room := v[0], v[1]
	err := events.Announce(context.Background(), nc, prefix, events.Announcement{
		Room: room, Text: "The building closes in ten minutes.", Priority: 7, Category: "shutdown", Source: "go-sdk",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Refused here, not sent: the voice worker would refuse it too.
	err = events.Announce(context.Background(), nc, prefix, events.Announcement{Room: room, Text: "  ", Source: "go-sdk"})
	if wire.CodeOf(err) != wire.BadRequest {
		t.Fatalf("blank announcement: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// pytest publishes lifecycle events with arc_voice's EventRecorder once this test says it is
// subscribed (on <prefix>.go-sdk.ready).
func TestIntegrationLifecycleFromVoiceRecorder(t *testing.T) {
	nc, v := natsFromEnv(t, "ARC_TEST_LIFECYCLE_PREFIX", "ARC_TEST_LIFECYCLE_SESSION")
	prefix, session := v[0], v[1]
	got := make(chan events.Event, 16)
	sub, err := events.SubscribeLifecycle(nc, prefix, func(e events.Event, err error) {
		if err != nil {
			t.Errorf("undecodable lifecycle event: %v", err)
			return
		}
		got <- e
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(prefix+".go-sdk.ready", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"session.started", "track.published", "track.unpublished", "session.ended"}
	deadline := time.After(30 * time.Second)
	for i, typ := range want {
		select {
		case e := <-got:
			if e.Header().Type != typ || e.Session() != session {
				t.Fatalf("event %d: %s for session %q, want %s for %q", i, e.Header().Type, e.Session(), typ, session)
			}
			switch ev := e.(type) {
			case *events.SessionStarted:
				if ev.Room != "go-room" || ev.UserID == nil || *ev.UserID != "go-user" {
					t.Fatalf("%+v", ev)
				}
			case *events.TrackPublished:
				if ev.Participant != "caller" || ev.TrackSID != "TR_go" || ev.Kind != "audio" {
					t.Fatalf("%+v", ev)
				}
			case *events.SessionEnded:
				if ev.Reason == nil || *ev.Reason != "hangup" {
					t.Fatalf("%+v", ev)
				}
			}
			if time.Since(e.Header().OccurredAt.Time) > time.Minute {
				t.Fatalf("occurred_at %s", e.Header().OccurredAt)
			}
		case <-deadline:
			t.Fatalf("only %d of %d lifecycle events arrived", i, len(want))
		}
	}
}
