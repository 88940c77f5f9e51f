// Command ask asks Arc's brain a question over NATS and prints the answer as it streams;
// with -speak it also has the TTS worker say the answer and writes the audio to a WAV file.
//
//	go run ./examples/ask -nats nats://127.0.0.1:4222 "what time is it?"
//
// Ctrl-C cancels the turn: the brain is told (brain.cancel) and stops within 50 ms.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/arc-voice/arc/libs/go-sdk/streaming"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

func main() {
	url := flag.String("nats", nats.DefaultURL, "NATS server")
	prefix := flag.String("prefix", "", "subject prefix (namespace) of the services")
	user := flag.String("user", "go-example", "user id (the brain's memory is per user)")
	speak := flag.String("speak", "", "also synthesize the answer into this WAV file")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of the whole exchange")
	flag.Parse()
	question := strings.Join(flag.Args(), " ")
	if err := run(*url, *prefix, *user, question, *speak, *timeout); err != nil {
		var arcErr *wire.Error
		if errors.As(err, &arcErr) {
			fmt.Fprintf(os.Stderr, "ask: %s (code %s, retryable %v)\n", arcErr.Message, arcErr.Code, arcErr.Retryable())
		} else {
			fmt.Fprintln(os.Stderr, "ask:", err)
		}
		os.Exit(1)
	}
}

func run(url, prefix, user, question, wavPath string, timeout time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	nc, err := nats.Connect(url, nats.Name("arc-go-ask"))
	if err != nil {
		return err
	}
	defer nc.Close()
	client, err := streaming.NewClient(nc, streaming.Options{SubjectPrefix: prefix})
	if err != nil {
		return err
	}
	defer client.Close()

	session := fmt.Sprintf("go-%d", time.Now().UnixNano())
	stream, err := client.Ask(ctx, wire.BrainRequest{SessionID: session, TurnID: session + "-1", UserID: user, Text: question})
	if err != nil {
		return err
	}
	var answer strings.Builder
	for chunk, err := range stream.Chunks() {
		if err != nil {
			return err
		}
		fmt.Print(chunk.Text)
		answer.WriteString(chunk.Text)
	}
	fmt.Println()
	if wavPath == "" {
		return nil
	}
	speech, err := client.Speak(ctx, wire.TTSRequest{SessionID: session, TurnID: session + "-2", Text: answer.String(), SampleRate: 24000})
	if err != nil {
		return err
	}
	var pcm []byte
	for chunk, err := range speech.Chunks() {
		if err != nil {
			return err
		}
		pcm = append(pcm, chunk.PCM...)
	}
	return os.WriteFile(wavPath, wav(pcm, 24000), 0o644)
}

// wav wraps 16-bit mono PCM in a RIFF header.
func wav(pcm []byte, rate int) []byte {
	h := make([]byte, 44, 44+len(pcm))
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(pcm)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(pcm)))
	return append(h, pcm...)
}
