package streaming

import (
	"context"
	"io"
	"iter"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Stream is the reply of one turn, read with Recv or ranged over with Chunks. It ends with
// io.EOF after the server's `end` (see End for its reason), or with an *wire.Error: the one
// the server reported, or one of its own for a deadline, a timeout, a cancelled context or a
// broken stream. Whenever it ends before the server finished, it publishes `*.cancel` so the
// server stops working for nobody.
type Stream struct {
	c      *Client
	token  string
	t      turn
	sentAt time.Time

	mu       sync.Mutex
	queue    []*nats.Msg
	finished bool
	err      error // why the stream ended; io.EOF after `end`

	notify  chan struct{} // a message was queued (capacity 1: a wake-up, not a count)
	gone    chan struct{} // closed when the stream is abandoned, to wake a Recv blocked on it
	stop    func() bool   // detaches the context watcher; guarded by mu
	timer   *time.Timer
	nextSeq int
	end     *wire.ReplyChunk
}

func newStream(c *Client, token string, t turn) *Stream {
	return &Stream{c: c, token: token, t: t, notify: make(chan struct{}, 1), gone: make(chan struct{})}
}

// watch publishes the cancel the moment ctx ends, not at the next Recv: a caller that stops
// reading and cancels must still stop the server's work.
func (s *Stream) watch(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() {
		err := ctx.Err()
		s.abandon(wire.Errorf(wire.CodeOf(err), "turn %s on %s: %v", s.t.turnID, s.t.subject, context.Cause(ctx)))
	})
	s.mu.Lock()
	s.stop = stop
	s.mu.Unlock()
}

// TurnID is the turn this stream answers.
func (s *Stream) TurnID() string { return s.t.turnID }

// ReplySubject is the inbox subject the server publishes this stream's chunks to.
func (s *Stream) ReplySubject() string { return s.c.inbox + "." + s.token }

// SentAt is when the request was published.
func (s *Stream) SentAt() time.Time { return s.sentAt }

// End is the terminal `end` chunk once Recv has returned io.EOF (its Reason is "cancelled"
// when the server stopped on a cancel), nil before.
func (s *Stream) End() *wire.ReplyChunk { return s.end }

func (s *Stream) push(msg *nats.Msg) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, msg)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Stream) pop() (*nats.Msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return nil, s.err
	}
	if len(s.queue) == 0 {
		return nil, nil
	}
	msg := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return msg, nil
}

// finish ends the stream with err; only the first call counts. It reports whether this call
// ended it, so exactly one path publishes the cancel.
func (s *Stream) finish(err error) bool {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return false
	}
	s.finished, s.err, s.queue = true, err, nil
	stop := s.stop
	s.mu.Unlock()
	s.c.forget(s.token)
	if stop != nil {
		stop()
	}
	return true
}

// abandon ends a stream the server has not finished and tells the server to stop.
func (s *Stream) abandon(err error) {
	if !s.finish(err) {
		return
	}
	close(s.gone)
	// The caller's error is why the stream ended; a cancel that could not be published only
	// means the server works on until its own deadline.
	_ = s.c.publishCancel(s.t.cancelSubject, s.t.turnID)
}

// Close stops reading; if the server has not finished, it is told to cancel the turn.
func (s *Stream) Close() {
	s.abandon(wire.Errorf(wire.Cancelled, "turn %s closed by the caller", s.t.turnID))
}

// Recv returns the next non-terminal chunk, io.EOF after `end`, or the error that ended the
// stream (the same one again on later calls).
func (s *Stream) Recv() (wire.ReplyChunk, error) {
	for {
		msg, err := s.pop()
		if err != nil {
			return wire.ReplyChunk{}, err
		}
		if msg != nil {
			return s.accept(msg)
		}
		wait := s.c.opts.IdleTimeout
		if s.nextSeq == 0 {
			wait = s.c.opts.FirstChunkTimeout
		}
		if s.timer == nil {
			s.timer = time.NewTimer(wait)
		} else {
			s.timer.Reset(wait)
		}
		select {
		case <-s.notify:
		case <-s.gone:
		case <-s.timer.C:
			s.abandon(wire.Errorf(wire.Timeout, "no reply chunk on %s within %s", s.t.subject, wait))
		}
	}
}

func (s *Stream) accept(msg *nats.Msg) (wire.ReplyChunk, error) {
	if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
		err := wire.Errorf(wire.Busy, "no worker is serving %s", s.t.subject)
		s.finish(err)
		return wire.ReplyChunk{}, err
	}
	chunk, err := wire.DecodeReplyChunk(msg.Data)
	if err == nil {
		err = s.check(&chunk)
	}
	if err != nil {
		// The stream can no longer be trusted: stop the server too.
		s.abandon(err)
		return wire.ReplyChunk{}, err
	}
	s.nextSeq++
	switch chunk.Kind {
	case wire.KindEnd:
		s.end = &chunk
		s.finish(io.EOF)
		return wire.ReplyChunk{}, io.EOF
	case wire.KindError:
		err := chunk.Err()
		s.finish(err)
		return wire.ReplyChunk{}, err
	}
	return chunk, nil
}

func (s *Stream) check(c *wire.ReplyChunk) error {
	if c.Seq != s.nextSeq {
		return wire.Errorf(wire.Internal, "reply chunk seq %d where %d was expected", c.Seq, s.nextSeq)
	}
	if c.TurnID != s.t.turnID {
		return wire.Errorf(wire.Internal, "reply chunk for turn %q, expected %q", c.TurnID, s.t.turnID)
	}
	if c.Kind == wire.KindAudio {
		if s.t.frameBytes == 0 {
			return wire.Errorf(wire.Internal, "audio chunk in a reply from %s", s.t.subject)
		}
		if len(c.PCM) == 0 || len(c.PCM)%s.t.frameBytes != 0 {
			return wire.Errorf(wire.Internal, "audio chunk of %d bytes is not whole %d-byte frames", len(c.PCM), s.t.frameBytes)
		}
		if c.SampleRate != 0 && c.SampleRate != s.t.sampleRate {
			return wire.Errorf(wire.Internal, "audio at %d Hz where %d was asked", c.SampleRate, s.t.sampleRate)
		}
	}
	if c.Kind == wire.KindDelta && s.t.frameBytes != 0 {
		return wire.Errorf(wire.Internal, "text delta in a reply from %s", s.t.subject)
	}
	return nil
}

// Chunks ranges over the stream's chunks; a failure is yielded once as the error, and
// breaking out of the loop early cancels the turn.
func (s *Stream) Chunks() iter.Seq2[wire.ReplyChunk, error] {
	return func(yield func(wire.ReplyChunk, error) bool) {
		for {
			chunk, err := s.Recv()
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(chunk, err)
				return
			}
			if !yield(chunk, nil) {
				s.Close()
				return
			}
		}
	}
}

// Text collects a brain stream's deltas into the whole answer.
func (s *Stream) Text() (string, error) {
	var b []byte
	for chunk, err := range s.Chunks() {
		if err != nil {
			return string(b), err
		}
		b = append(b, chunk.Text...)
	}
	return string(b), nil
}
