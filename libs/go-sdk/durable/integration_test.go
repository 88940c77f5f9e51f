package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsar/log"

	"github.com/arc-voice/arc/libs/go-sdk/durable"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// pytest (tests/integration/go_sdk) writes events to the outbox, lets the real relay send
// them to Pulsar twice (as after a crash between send and mark-sent), adds poison messages,
// and passes what it wrote: event_id -> type.
func TestIntegrationConsumerReadsRelayedEventsOnce(t *testing.T) {
	url, suffix, expectedJSON := os.Getenv("ARC_TEST_PULSAR_URL"), os.Getenv("ARC_TEST_TOPIC_SUFFIX"), os.Getenv("ARC_TEST_EXPECTED_EVENTS")
	if url == "" || expectedJSON == "" {
		t.Skip("ARC_TEST_PULSAR_URL / ARC_TEST_EXPECTED_EVENTS not set: run through pytest tests/integration/go_sdk")
	}
	var expected map[string]string
	if err := json.Unmarshal([]byte(expectedJSON), &expected); err != nil {
		t.Fatal(err)
	}
	poison, _ := strconv.Atoi(os.Getenv("ARC_TEST_EXPECTED_POISON"))
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: url, OperationTimeout: 30 * time.Second, Logger: log.DefaultNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := durable.Subscribe(client, durable.Options{TopicSuffix: suffix, Subscription: "go-sdk-test", FromEarliest: true})
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()

	// Receive until every event and poison message was seen, then until the topics stay
	// quiet for a second: duplicates are skipped inside Receive, so they show only in the
	// count.
	deadline := time.Now().Add(60 * time.Second)
	seen := map[string]string{}
	poisoned := 0
	for {
		wait := time.Until(deadline)
		if len(seen) == len(expected) && poisoned >= poison {
			wait = time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		d, err := consumer.Receive(ctx)
		cancel()
		var p *durable.PoisonError
		if errors.As(err, &p) {
			if wire.CodeOf(err) != wire.BadRequest {
				t.Fatalf("poison reported as %v", err)
			}
			poisoned++
			continue
		}
		if wire.CodeOf(err) == wire.Timeout && wait == time.Second {
			break // quiet: everything arrived
		}
		if err != nil {
			t.Fatalf("after %d events, %d duplicates, %d poison: %v", len(seen), consumer.Duplicates(), poisoned, err)
		}
		id, typ := d.Event.Header().EventID, d.Event.Header().Type
		if _, twice := seen[id]; twice {
			t.Fatalf("event %s delivered twice", id)
		}
		if expected[id] != typ {
			t.Fatalf("unexpected event %s of type %s (expected type %q)", id, typ, expected[id])
		}
		if d.Message.Properties()["event_id"] != id {
			t.Fatalf("message property event_id %q for event %s", d.Message.Properties()["event_id"], id)
		}
		seen[id] = typ
		if err := consumer.Ack(d); err != nil {
			t.Fatal(err)
		}
	}
	if consumer.Duplicates() != int64(len(expected)) || poisoned != poison {
		t.Fatalf("%d duplicates skipped (want %d), %d poison (want %d)", consumer.Duplicates(), len(expected), poisoned, poison)
	}
	t.Logf("%d events, %d duplicates skipped, %d poison messages", len(seen), consumer.Duplicates(), poisoned)
}
