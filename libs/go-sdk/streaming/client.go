// Package streaming asks the brain and the TTS over NATS as arc_common.streaming does: one
// request, a stream of reply chunks checked for order and turn, exactly one terminal
// message, deadlines, and a `*.cancel` when the caller gives up.
package streaming

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arc-voice/arc/libs/go-sdk/envelope"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Options of a Client; the zero value is the contract's unprefixed subjects with the
// Python client's timeouts.
type Options struct {
	// SubjectPrefix puts every subject under a namespace (tests give each test its own).
	SubjectPrefix string
	// FirstChunkTimeout bounds the wait for a stream's first message (default 5 s).
	FirstChunkTimeout time.Duration
	// IdleTimeout bounds the gap between later messages (default 5 s).
	IdleTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.FirstChunkTimeout <= 0 {
		o.FirstChunkTimeout = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Second
	}
	return o
}

// Client owns one wildcard inbox subscription shared by every stream it opens, so a request
// costs one publish rather than a subscribe/unsubscribe pair. Safe for concurrent use.
type Client struct {
	nc     *nats.Conn
	opts   Options
	inbox  string
	sub    *nats.Subscription
	nextID atomic.Uint64

	mu      sync.Mutex
	streams map[string]*Stream
	closed  bool
}

// NewClient subscribes the client's inbox on nc; Close releases it.
func NewClient(nc *nats.Conn, opts Options) (*Client, error) {
	c := &Client{nc: nc, opts: opts.withDefaults(), inbox: nc.NewRespInbox(), streams: map[string]*Stream{}}
	sub, err := nc.Subscribe(c.inbox+".*", c.dispatch)
	if err != nil {
		return nil, wire.Errorf(wire.Internal, "subscribing the reply inbox: %v", err)
	}
	// The default pending limits drop messages of a slow reader; a stream's chunks must
	// never be dropped silently (a gap is reported as a seq error, but better not to have it).
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, wire.Errorf(wire.Internal, "setting inbox limits: %v", err)
	}
	c.sub = sub
	return c, nil
}

// Inbox is the prefix every reply subject of this client starts with (`<inbox>.<n>`).
func (c *Client) Inbox() string { return c.inbox }

// Conn is the connection the streams use.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Close abandons every open stream (each publishes its cancel) and unsubscribes the inbox.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	open := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		open = append(open, s)
	}
	c.mu.Unlock()
	for _, s := range open {
		s.Close()
	}
	return c.sub.Unsubscribe()
}

func (c *Client) dispatch(msg *nats.Msg) {
	token := msg.Subject[len(c.inbox)+1:]
	c.mu.Lock()
	s := c.streams[token]
	c.mu.Unlock()
	if s != nil {
		s.push(msg)
	}
}

func (c *Client) forget(token string) {
	c.mu.Lock()
	delete(c.streams, token)
	c.mu.Unlock()
}

// Ask sends `brain.request` and returns its reply stream of `delta` chunks. The request is
// validated first: what the brain would refuse is refused here with the same code, and
// nothing is sent.
func (c *Client) Ask(ctx context.Context, req wire.BrainRequest) (*Stream, error) {
	checked, err := req.Checked()
	if err != nil {
		return nil, err
	}
	return c.open(ctx, turn{
		subject:       wire.Prefixed(c.opts.SubjectPrefix, wire.SubjectBrainRequest),
		cancelSubject: wire.Prefixed(c.opts.SubjectPrefix, wire.SubjectBrainCancel),
		schema:        wire.SchemaBrainRequest,
		turnID:        checked.TurnID,
		request:       checked,
	})
}

// Speak sends `tts.request` and returns its reply stream of `audio` chunks, each checked to
// hold whole frames at the requested rate.
func (c *Client) Speak(ctx context.Context, req wire.TTSRequest) (*Stream, error) {
	checked, err := req.Checked()
	if err != nil {
		return nil, err
	}
	return c.open(ctx, turn{
		subject:       wire.Prefixed(c.opts.SubjectPrefix, wire.SubjectTTSRequest),
		cancelSubject: wire.Prefixed(c.opts.SubjectPrefix, wire.SubjectTTSCancel),
		schema:        wire.SchemaTTSRequest,
		turnID:        checked.TurnID,
		request:       checked,
		frameBytes:    wire.FrameBytes(checked.Rate(), checked.Frame()),
		sampleRate:    checked.Rate(),
	})
}

// Commit publishes `brain.commit` for a tentative turn that turned out to be the real one.
func (c *Client) Commit(ctx context.Context, turnID string) error {
	if err := wire.CheckID("turn_id", turnID); err != nil {
		return err
	}
	body, _ := wire.Encode(wire.Commit{V: wire.Version, TurnID: turnID})
	return c.publish(&nats.Msg{
		Subject: wire.Prefixed(c.opts.SubjectPrefix, wire.SubjectBrainCommit),
		Data:    body,
		Header:  envelope.Headers(ctx, wire.SchemaCommit),
	})
}

func (c *Client) publish(msg *nats.Msg) error {
	if err := c.nc.PublishMsg(msg); err != nil {
		return wire.Errorf(wire.Internal, "publishing on %s: %v", msg.Subject, err)
	}
	return nil
}

type turn struct {
	subject, cancelSubject, schema, turnID string
	request                                any
	frameBytes, sampleRate                 int
}

func (c *Client) open(ctx context.Context, t turn) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, wire.Errorf(wire.CodeOf(err), "not sent: %v", err)
	}
	body, err := wire.Encode(t.request)
	if err != nil {
		return nil, wire.Errorf(wire.BadRequest, "encoding %s: %v", t.schema, err)
	}
	if len(body) > wire.MaxPayloadBytes {
		return nil, wire.Errorf(wire.TooLarge, "request is %d bytes; the limit is %d", len(body), wire.MaxPayloadBytes)
	}
	token := strconv.FormatUint(c.nextID.Add(1), 36)
	s := newStream(c, token, t)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		// Its inbox is gone: a request now would only ever time out.
		return nil, wire.Errorf(wire.Internal, "the streaming client is closed")
	}
	c.streams[token] = s
	c.mu.Unlock()
	err = c.publish(&nats.Msg{
		Subject: t.subject,
		Reply:   c.inbox + "." + token,
		Data:    body,
		Header:  envelope.Headers(ctx, t.schema),
	})
	if err != nil {
		c.forget(token)
		return nil, err
	}
	s.sentAt = time.Now()
	s.watch(ctx)
	return s, nil
}

func (c *Client) publishCancel(subject, turnID string) error {
	body, _ := wire.Encode(wire.Cancel{V: wire.Version, TurnID: turnID})
	// A cancel is not traced: it is published from wherever the caller gave up, often a
	// context already gone.
	err := c.publish(&nats.Msg{Subject: subject, Data: body, Header: envelope.Headers(context.Background(), wire.SchemaCancel)})
	if err != nil {
		return fmt.Errorf("cancel of turn %s: %w", turnID, err)
	}
	return nil
}
