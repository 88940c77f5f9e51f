// Package durable consumes Arc's durable events from Pulsar: every message is decoded and
// validated against the event schemas (package events), and an event_id already
// acknowledged is skipped, so the relay's re-sends and the broker's redeliveries reach the
// application once.
package durable

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/arc-voice/arc/libs/go-sdk/events"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Options of a Consumer. Subscription is required; the rest has defaults.
type Options struct {
	// Topics to read; default every durable topic (events.Topics).
	Topics []string
	// TopicSuffix is appended to each topic, as the events service's `topic_suffix`
	// (tests give each test topics of their own).
	TopicSuffix  string
	Subscription string
	// Type defaults to Key_Shared, as Arc's own consumers: any number of processes, and one
	// session's events stay on one of them, in order.
	Type pulsar.SubscriptionType
	// FromEarliest starts a new subscription at the oldest retained message, not the next.
	FromEarliest bool
	// Remember is how many acknowledged event ids are kept for de-duplication (default
	// 100 000, a few MB). Past that the oldest are forgotten; a consumer that must be exact
	// across restarts stores applied ids with its own state, as arc_events does.
	Remember int
}

// Delivery is one event to apply; Ack it once applied.
type Delivery struct {
	Event   events.Event
	Message pulsar.Message
}

// PoisonError reports a message that is not a valid event. It is acknowledged (it can never
// become valid), so the stream is not blocked; Err is a `bad_request` *wire.Error.
type PoisonError struct {
	Topic string
	ID    pulsar.MessageID
	Err   error
}

func (e *PoisonError) Error() string {
	return fmt.Sprintf("poison message %v on %s: %v", e.ID, e.Topic, e.Err)
}

func (e *PoisonError) Unwrap() error { return e.Err }

// Consumer reads durable events. Receive and Ack may be called from different goroutines.
type Consumer struct {
	consumer   pulsar.Consumer
	seen       *idSet
	duplicates atomic.Int64
	poison     atomic.Int64
}

// Subscribe opens the subscription on client.
func Subscribe(client pulsar.Client, opts Options) (*Consumer, error) {
	if opts.Subscription == "" {
		return nil, wire.Errorf(wire.BadRequest, "a subscription name is required")
	}
	topics := opts.Topics
	if len(topics) == 0 {
		topics = events.Topics
	}
	named := make([]string, len(topics))
	for i, t := range topics {
		named[i] = t + opts.TopicSuffix
	}
	subType := opts.Type
	if subType == pulsar.Exclusive {
		// Exclusive is the zero value; a caller who wants it on purpose passes Failover.
		subType = pulsar.KeyShared
	}
	position := pulsar.SubscriptionPositionLatest
	if opts.FromEarliest {
		position = pulsar.SubscriptionPositionEarliest
	}
	remember := opts.Remember
	if remember <= 0 {
		remember = 100_000
	}
	c, err := client.Subscribe(pulsar.ConsumerOptions{
		Topics:                      named,
		SubscriptionName:            opts.Subscription,
		Type:                        subType,
		SubscriptionInitialPosition: position,
	})
	if err != nil {
		return nil, wire.Errorf(wire.Busy, "subscribing %v as %s: %v", named, opts.Subscription, err)
	}
	return &Consumer{consumer: c, seen: newIDSet(remember)}, nil
}

// Receive blocks for the next event not acknowledged before. A duplicate is acknowledged
// and skipped; a poison message is acknowledged and returned as *PoisonError (call Receive
// again to go on); a context that ends gives its `cancelled` or `timeout` *wire.Error.
func (c *Consumer) Receive(ctx context.Context) (Delivery, error) {
	for {
		msg, err := c.consumer.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return Delivery{}, wire.Errorf(wire.CodeOf(ctx.Err()), "receiving events: %v", err)
			}
			return Delivery{}, wire.Errorf(wire.Busy, "receiving events: %v", err)
		}
		event, err := events.DecodeJSON(msg.Payload())
		if err != nil {
			c.poison.Add(1)
			ackErr := c.consumer.Ack(msg)
			return Delivery{}, &PoisonError{Topic: msg.Topic(), ID: msg.ID(), Err: errors.Join(err, ackErr)}
		}
		if c.seen.has(event.Header().EventID) {
			c.duplicates.Add(1)
			if err := c.consumer.Ack(msg); err != nil {
				return Delivery{}, wire.Errorf(wire.Busy, "acknowledging a duplicate: %v", err)
			}
			continue
		}
		return Delivery{Event: event, Message: msg}, nil
	}
}

// Ack marks d applied: the broker forgets it and a later copy of the same event is skipped.
func (c *Consumer) Ack(d Delivery) error {
	if err := c.consumer.Ack(d.Message); err != nil {
		return wire.Errorf(wire.Busy, "acknowledging %s: %v", d.Event.Header().EventID, err)
	}
	c.seen.add(d.Event.Header().EventID)
	return nil
}

// Nack asks for d again later (after the subscription's redelivery delay).
func (c *Consumer) Nack(d Delivery) { c.consumer.Nack(d.Message) }

// Duplicates is how many messages were skipped as already applied.
func (c *Consumer) Duplicates() int64 { return c.duplicates.Load() }

// Poison is how many messages were not valid events.
func (c *Consumer) Poison() int64 { return c.poison.Load() }

// Close closes the subscription's consumer (not the client).
func (c *Consumer) Close() { c.consumer.Close() }
