"""Arc events: outbox relay to Pulsar and Pulsar consumers."""
