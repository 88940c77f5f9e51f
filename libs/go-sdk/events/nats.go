package events

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/arc-voice/arc/libs/go-sdk/envelope"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// SchemaAnnounce is the arc-schema of `agent.voice.announce`.
const SchemaAnnounce = "announce/1"

// Announcement is `agent.voice.announce`: text the agent speaks into Room. Bursts are
// coalesced by the voice worker, a higher Category superseding lower ones (shutdown over
// error over ready over init over info).
type Announcement struct {
	V        int    `msgpack:"v"`
	Text     string `msgpack:"text"`
	Priority int    `msgpack:"priority"`
	Category string `msgpack:"category"`
	Source   string `msgpack:"source"`
	Room     string `msgpack:"room"`
}

// Checked applies the voice worker's limits (arc_voice.announcements) and fills the
// defaults it would apply (category "info", source "unknown").
func (a Announcement) Checked() (Announcement, error) {
	if a.V == 0 {
		a.V = wire.Version
	}
	if a.Category == "" {
		a.Category = "info"
	}
	if a.Source == "" {
		a.Source = "unknown"
	}
	return a, a.validate()
}

func (a Announcement) validate() error {
	bad := func(format string, args ...any) error {
		return wire.Errorf(wire.BadRequest, "invalid announcement: "+format, args...)
	}
	if a.V != wire.Version {
		return bad("v must be %d, got %d", wire.Version, a.V)
	}
	if wire.Strip(a.Text) == "" {
		return wire.Errorf(wire.BadRequest, "announcement text is empty")
	}
	for _, f := range []struct {
		name  string
		value string
		max   int
	}{{"text", a.Text, 2000}, {"category", a.Category, 64}, {"source", a.Source, 256}, {"room", a.Room, 256}} {
		if n := utf8.RuneCountInString(f.value); n < 1 || n > f.max {
			return bad("%s must be 1..%d characters, got %d", f.name, f.max, n)
		}
	}
	if a.Priority < 0 || a.Priority > 1000 {
		return bad("priority must be 0..1000, got %d", a.Priority)
	}
	return nil
}

// Announce asks the agent in room to say text. It is fire-and-forget, as on the Python side:
// the voice worker speaks it when the room falls silent, and records AnnouncementSpoken.
func Announce(ctx context.Context, nc *nats.Conn, prefix string, a Announcement) error {
	checked, err := a.Checked()
	if err != nil {
		return err
	}
	body, err := msgpack.Marshal(checked)
	if err != nil {
		return wire.Errorf(wire.Internal, "encoding announcement: %v", err)
	}
	msg := &nats.Msg{
		Subject: wire.Prefixed(prefix, wire.SubjectAnnounce),
		Data:    body,
		Header:  envelope.Headers(ctx, SchemaAnnounce),
	}
	if err := nc.PublishMsg(msg); err != nil {
		return wire.Errorf(wire.Internal, "publishing announcement: %v", err)
	}
	return nil
}

// LifecycleSubjects are the live lifecycle events the voice worker publishes on NATS.
var LifecycleSubjects = []string{
	wire.SubjectSessionStarted,
	wire.SubjectSessionEnded,
	wire.SubjectTrackPublished,
	wire.SubjectTrackUnpublished,
}

// Subscription is a live subscription to lifecycle events; Unsubscribe ends it.
type Subscription struct{ sub *nats.Subscription }

// Unsubscribe stops the subscription.
func (s *Subscription) Unsubscribe() error { return s.sub.Unsubscribe() }

// SubscribeLifecycle calls handle, in publishing order, for every lifecycle event published
// under prefix. A message that is not a valid event reaches handle as a `bad_request` error
// with a nil event: the subscription keeps going, and the caller decides whether to log or
// count it. Live events are not durable; a consumer that must see every one reads Pulsar.
func SubscribeLifecycle(nc *nats.Conn, prefix string, handle func(Event, error)) (*Subscription, error) {
	// One wildcard subscription, not one per subject: NATS keeps order within a
	// subscription only, and "ended" must not overtake "started".
	wanted := make(map[string]bool, len(LifecycleSubjects))
	for _, subject := range LifecycleSubjects {
		wanted[wire.Prefixed(prefix, subject)] = true
	}
	sub, err := nc.Subscribe(wire.Prefixed(prefix, "agent.>"), func(msg *nats.Msg) {
		if !wanted[msg.Subject] {
			return // announcements and whatever else shares the namespace
		}
		event, err := DecodeMsgpack(msg.Data)
		if err == nil {
			if schema := envelope.Schema(msg.Header); schema != "" && schema != schemaName(event) {
				err = wire.Errorf(wire.BadRequest, "arc-schema %q does not match a %s event", schema, schemaName(event))
			}
		}
		if err != nil {
			handle(nil, err)
			return
		}
		handle(event, nil)
	})
	if err != nil {
		return nil, wire.Errorf(wire.Internal, "subscribing lifecycle events: %v", err)
	}
	return &Subscription{sub: sub}, nil
}

func schemaName(e Event) string {
	k := e.schema()
	return fmt.Sprintf("%s/%d", k.typ, k.v)
}

// ParseAnnouncement decodes and validates an `agent.voice.announce` payload as the voice
// worker does (arc_voice.announcements.decode_announcement): every failure is `bad_request`.
func ParseAnnouncement(data []byte) (Announcement, error) {
	// The voice worker's defaults, for fields the payload leaves out.
	a := Announcement{V: wire.Version, Category: "info", Source: "unknown"}
	if err := msgpack.Unmarshal(data, &a); err != nil {
		return a, wire.Errorf(wire.BadRequest, "announcement is not a MessagePack map: %v", err)
	}
	return a, a.validate()
}
