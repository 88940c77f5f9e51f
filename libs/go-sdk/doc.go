// Package arc is the root of the Go SDK of Arc's v1 wire contract (docs/go-sdk.md).
//
// The contract lives in sub-packages, each usable on its own:
//   - wire: the NATS messages, their limits and the contract's error codes;
//   - envelope: the arc-schema header and W3C trace context on NATS headers;
//   - streaming: Brain.Ask and TTS.Speak over NATS, with seq checks and cancellation;
//   - events: announcements, live lifecycle events on NATS, and the durable event schemas;
//   - durable: a Pulsar consumer of the durable topics that de-duplicates by event_id;
//   - token: LiveKit participant tokens for rooms the agent serves.
package arc
