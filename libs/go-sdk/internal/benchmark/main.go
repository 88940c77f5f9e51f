// Command benchmark measures the SDK's streaming client against the same exchange written
// with bare nats.go, interleaved round by round (tests/bench/go_sdk.py runs it and writes
// docs/benchmarks.md). Both variants talk to one responder, written with bare nats.go on a
// connection of its own, so the difference is the client's own cost: validation, headers,
// seq and turn checks, frame checks, timeouts and cancellation.
//
// The bare client puts the same bytes on the wire (the same MessagePack and arc-schema
// header, to a wildcard inbox) and decodes each reply into a map to find its kind.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/arc-voice/arc/libs/go-sdk/streaming"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

const (
	prefix      = "gobench"
	audioChunks = 50
)

var (
	text1K = strings.Repeat("x", 1024)
	// 40 ms of 48 kHz audio: two 20 ms frames, as in the Python RPC benchmark.
	audioChunk = []byte(strings.Repeat("\x01\x02", 1920))
)

type result struct {
	Rounds     int                  `json:"rounds"`
	Warmup     int                  `json:"warmup"`
	RoundTrip  map[string][]float64 `json:"round_trip_ms"`
	FirstChunk map[string][]float64 `json:"first_chunk_ms"`
}

func main() {
	url := flag.String("nats", "", "NATS URL")
	rounds := flag.Int("rounds", 2000, "measured rounds")
	warmup := flag.Int("warmup", 200, "warm-up rounds")
	flag.Parse()
	if err := run(*url, *rounds, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(url string, rounds, warmup int) error {
	server, err := nats.Connect(url, nats.Name("bench-responder"))
	if err != nil {
		return err
	}
	defer server.Close()
	if err := respond(server); err != nil {
		return err
	}
	nc, err := nats.Connect(url, nats.Name("bench-client"))
	if err != nil {
		return err
	}
	defer nc.Close()
	sdk, err := streaming.NewClient(nc, streaming.Options{SubjectPrefix: prefix})
	if err != nil {
		return err
	}
	defer sdk.Close()
	bare, err := newBare(nc)
	if err != nil {
		return err
	}
	res := result{Rounds: rounds, Warmup: warmup,
		RoundTrip: map[string][]float64{}, FirstChunk: map[string][]float64{}}
	for i := range warmup + rounds {
		turn := "t" + strconv.Itoa(i)
		// Alternate which variant goes first so neither always gets the warmer cache.
		order := []string{"sdk", "bare"}
		if i%2 == 1 {
			order = []string{"bare", "sdk"}
		}
		for _, variant := range order {
			var rtt, first time.Duration
			if variant == "sdk" {
				rtt, err = sdkRoundTrip(sdk, turn)
				if err == nil {
					first, err = sdkFirstChunk(sdk, turn)
				}
			} else {
				rtt, err = bare.exchange(wire.SubjectBrainRequest, turn, false)
				if err == nil {
					first, err = bare.exchange(wire.SubjectTTSRequest, turn, true)
				}
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %w", variant, i, err)
			}
			if i >= warmup {
				res.RoundTrip[variant] = append(res.RoundTrip[variant], ms(rtt))
				res.FirstChunk[variant] = append(res.FirstChunk[variant], ms(first))
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// respond answers brain requests with one delta and `end`, TTS requests with 50 audio
// chunks and `end`, the replies pre-encoded but for the turn id.
func respond(nc *nats.Conn) error {
	headers := func(schema string) nats.Header { return nats.Header{"arc-schema": []string{schema}} }
	reply := func(msg *nats.Msg, schema string, chunks []wire.ReplyChunk) {
		var req struct {
			TurnID string `msgpack:"turn_id"`
		}
		if err := msgpack.Unmarshal(msg.Data, &req); err != nil {
			return
		}
		for _, c := range chunks {
			c.V, c.TurnID = 1, req.TurnID
			body, _ := msgpack.Marshal(c)
			_ = nc.PublishMsg(&nats.Msg{Subject: msg.Reply, Data: body, Header: headers(schema)})
		}
	}
	echo := []wire.ReplyChunk{{Seq: 0, Kind: wire.KindDelta, Text: text1K}, {Seq: 1, Kind: wire.KindEnd}}
	audio := make([]wire.ReplyChunk, 0, audioChunks+1)
	for seq := range audioChunks {
		audio = append(audio, wire.ReplyChunk{Seq: seq, Kind: wire.KindAudio, PCM: audioChunk, SampleRate: 48000})
	}
	audio = append(audio, wire.ReplyChunk{Seq: audioChunks, Kind: wire.KindEnd})
	if _, err := nc.Subscribe(prefix+"."+wire.SubjectBrainRequest, func(m *nats.Msg) { reply(m, wire.SchemaBrainReply, echo) }); err != nil {
		return err
	}
	if _, err := nc.Subscribe(prefix+"."+wire.SubjectTTSRequest, func(m *nats.Msg) { reply(m, wire.SchemaTTSReply, audio) }); err != nil {
		return err
	}
	return nc.Flush()
}

func sdkRoundTrip(c *streaming.Client, turn string) (time.Duration, error) {
	began := time.Now()
	s, err := c.Ask(context.Background(), wire.BrainRequest{SessionID: "s", TurnID: turn, UserID: "u", Text: text1K})
	if err != nil {
		return 0, err
	}
	for {
		if _, err := s.Recv(); err == io.EOF {
			return time.Since(began), nil
		} else if err != nil {
			return 0, err
		}
	}
}

func sdkFirstChunk(c *streaming.Client, turn string) (time.Duration, error) {
	began := time.Now()
	s, err := c.Speak(context.Background(), wire.TTSRequest{SessionID: "s", TurnID: turn, Text: "hello"})
	if err != nil {
		return 0, err
	}
	var first time.Duration
	for {
		_, err := s.Recv()
		if err == io.EOF {
			return first, nil
		}
		if err != nil {
			return 0, err
		}
		if first == 0 {
			first = time.Since(began)
		}
	}
}

// bareClient is the hand-written requester: one wildcard inbox, a channel per request,
// replies decoded into maps.
type bareClient struct {
	nc     *nats.Conn
	inbox  string
	n      atomic.Uint64
	mu     sync.Mutex
	queues map[string]chan *nats.Msg
}

func newBare(nc *nats.Conn) (*bareClient, error) {
	b := &bareClient{nc: nc, inbox: nc.NewRespInbox(), queues: map[string]chan *nats.Msg{}}
	_, err := nc.Subscribe(b.inbox+".*", func(m *nats.Msg) {
		b.mu.Lock()
		q := b.queues[m.Subject[len(b.inbox)+1:]]
		b.mu.Unlock()
		if q != nil {
			q <- m
		}
	})
	return b, err
}

func (b *bareClient) exchange(subject, turn string, firstOnly bool) (time.Duration, error) {
	token := strconv.FormatUint(b.n.Add(1), 36)
	q := make(chan *nats.Msg, audioChunks+2)
	b.mu.Lock()
	b.queues[token] = q
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.queues, token)
		b.mu.Unlock()
	}()
	req := map[string]any{"v": 1, "session_id": "s", "turn_id": turn, "user_id": "u", "text": text1K}
	schema := wire.SchemaBrainRequest
	if subject == wire.SubjectTTSRequest {
		req = map[string]any{"v": 1, "session_id": "s", "turn_id": turn, "text": "hello"}
		schema = wire.SchemaTTSRequest
	}
	body, err := msgpack.Marshal(req)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	err = b.nc.PublishMsg(&nats.Msg{Subject: prefix + "." + subject, Reply: b.inbox + "." + token, Data: body,
		Header: nats.Header{"arc-schema": []string{schema}}})
	if err != nil {
		return 0, err
	}
	var first time.Duration
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m := <-q:
			var chunk map[string]any
			if err := msgpack.Unmarshal(m.Data, &chunk); err != nil {
				return 0, err
			}
			if first == 0 {
				first = time.Since(began)
			}
			if kind := chunk["kind"]; kind == "end" || kind == "error" {
				if firstOnly {
					return first, nil
				}
				return time.Since(began), nil
			}
		case <-timeout:
			return 0, fmt.Errorf("no reply on %s", subject)
		}
	}
}
