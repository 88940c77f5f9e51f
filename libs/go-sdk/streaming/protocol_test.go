package streaming_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arc-voice/arc/libs/go-sdk/streaming"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// A peer that breaks the protocol cannot be had from the real services, so these tests
// answer on a subject of their own with hand-made replies, on the real NATS server.
func misbehave(t *testing.T, nc *nats.Conn, prefix string, replies func(req wire.BrainRequest) [][]byte) {
	t.Helper()
	sub, err := nc.Subscribe(wire.Prefixed(prefix, wire.SubjectBrainRequest), func(msg *nats.Msg) {
		var req wire.BrainRequest
		_ = wire.Decode(msg.Data, &req)
		for _, body := range replies(req) {
			_ = nc.Publish(msg.Reply, body)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()
}

func chunk(c wire.ReplyChunk) []byte {
	c.V = 1
	b, _ := wire.Encode(c)
	return b
}

func TestIntegrationBrokenRepliesAreTypedErrors(t *testing.T) {
	nc := connect(t)
	cases := map[string]struct {
		replies func(req wire.BrainRequest) [][]byte
		code    wire.Code
	}{
		"undecodable": {func(wire.BrainRequest) [][]byte { return [][]byte{[]byte("\xc1garbage")} }, wire.Internal},
		"not a chunk": {func(wire.BrainRequest) [][]byte { b, _ := wire.Encode([]int{1, 2}); return [][]byte{b} }, wire.Internal},
		"seq gap": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: r.TurnID, Seq: 1, Kind: wire.KindDelta, Text: "x"})}
		}, wire.Internal},
		"other turn": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: "someone-else", Seq: 0, Kind: wire.KindDelta, Text: "x"})}
		}, wire.Internal},
		"unknown kind": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: r.TurnID, Seq: 0, Kind: "shout"})}
		}, wire.Internal},
		"audio from the brain": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: r.TurnID, Seq: 0, Kind: wire.KindAudio, PCM: []byte{0, 0}})}
		}, wire.Internal},
		"error without body": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: r.TurnID, Seq: 0, Kind: wire.KindError})}
		}, wire.Internal},
		"unknown error code": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: r.TurnID, Kind: wire.KindError, Error: &wire.ErrorBody{Code: "exploded", Message: "m"}})}
		}, wire.Internal},
		"busy": {func(r wire.BrainRequest) [][]byte {
			return [][]byte{chunk(wire.ReplyChunk{TurnID: r.TurnID, Kind: wire.KindError, Error: &wire.ErrorBody{Code: "busy", Message: "full"}})}
		}, wire.Busy},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			prefix := newID("p")
			misbehave(t, nc, prefix, tc.replies)
			c := client(t, nc, prefix)
			cancels, _ := nc.SubscribeSync(wire.Prefixed(prefix, wire.SubjectBrainCancel))
			stream, err := c.Ask(context.Background(), brainRequest("hi"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = stream.Text()
			if wire.CodeOf(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			// A stream that cannot be trusted is cancelled at the server; a server's own
			// terminal error needs no cancel.
			_, cancelErr := cancels.NextMsg(200 * time.Millisecond)
			reported := name == "busy" || name == "unknown error code" || name == "error without body"
			if reported == (cancelErr == nil) {
				t.Fatalf("cancel published: %v (server-reported error: %v)", cancelErr == nil, reported)
			}
		})
	}
}

func TestIntegrationNoResponderIsBusy(t *testing.T) {
	nc := connect(t)
	c := client(t, nc, newID("nobody"))
	stream, err := c.Ask(context.Background(), brainRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); wire.CodeOf(err) != wire.Busy {
		t.Fatalf("got %v", err)
	}
}

func TestIntegrationSilentServerTimesOut(t *testing.T) {
	nc := connect(t)
	prefix := newID("silent")
	misbehave(t, nc, prefix, func(wire.BrainRequest) [][]byte { return nil })
	c, err := streaming.NewClient(nc, streaming.Options{SubjectPrefix: prefix, FirstChunkTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	stream, err := c.Ask(context.Background(), brainRequest("hi"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if wire.CodeOf(err) != wire.Timeout || time.Since(began) > time.Second {
		t.Fatalf("got %v after %s", err, time.Since(began))
	}
}

func TestIntegrationClosedClientRefusesNewTurns(t *testing.T) {
	nc := connect(t)
	c, err := streaming.NewClient(nc, streaming.Options{SubjectPrefix: newID("closed")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ask(context.Background(), brainRequest("hi")); wire.CodeOf(err) != wire.Internal {
		t.Fatalf("got %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestIntegrationCommitPublishesTheContractMessage(t *testing.T) {
	nc := connect(t)
	prefix := newID("commit")
	c := client(t, nc, prefix)
	commits, _ := nc.SubscribeSync(wire.Prefixed(prefix, wire.SubjectBrainCommit))
	_ = nc.Flush()
	if err := c.Commit(context.Background(), "t-42"); err != nil {
		t.Fatal(err)
	}
	msg, err := commits.NextMsg(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Commit
	if err := wire.Decode(msg.Data, &got); err != nil || got != (wire.Commit{V: 1, TurnID: "t-42"}) || msg.Header.Get("arc-schema") != wire.SchemaCommit {
		t.Fatalf("%+v %v %v", got, err, msg.Header)
	}
	if err := c.Commit(context.Background(), ""); wire.CodeOf(err) != wire.BadRequest {
		t.Fatalf("empty turn id: %v", err)
	}
}
