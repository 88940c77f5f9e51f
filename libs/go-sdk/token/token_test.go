package token_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/arc-voice/arc/libs/go-sdk/token"
	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

func verify(t *testing.T, jwt, secret string) *auth.ClaimGrants {
	t.Helper()
	_, grants := verifyWithExpiry(t, jwt, secret)
	return grants
}

func verifyWithExpiry(t *testing.T, jwt, secret string) (time.Time, *auth.ClaimGrants) {
	t.Helper()
	v, err := auth.ParseAPIToken(jwt)
	if err != nil {
		t.Fatal(err)
	}
	claims, grants, err := v.Verify(secret)
	if err != nil {
		t.Fatal(err)
	}
	return claims.ExpiresAt.Time, grants
}

func TestParticipantTokenGrants(t *testing.T) {
	jwt, err := token.Participant{APIKey: "devkey", APISecret: "secret", Room: "lobby", Identity: "caller-1", TTL: 10 * time.Minute}.Mint()
	if err != nil {
		t.Fatal(err)
	}
	expiry, g := verifyWithExpiry(t, jwt, "secret")
	v := g.Video
	if g.Identity != "caller-1" || g.Name != "caller-1" || v == nil || !v.RoomJoin || v.Room != "lobby" {
		t.Fatalf("grants %+v video %+v", g, v)
	}
	if !v.GetCanPublish() || !v.GetCanSubscribe() || v.RoomAdmin || v.RoomCreate || v.Agent {
		t.Fatalf("a participant gets exactly join, publish and subscribe: %+v", v)
	}
	if g.GetRoomConfiguration() != nil {
		t.Fatal("no agent dispatch was asked for")
	}
	if left := time.Until(expiry); left < 9*time.Minute || left > 11*time.Minute {
		t.Fatalf("expires in %s", left)
	}
}

func TestAgentDispatchInRoomConfiguration(t *testing.T) {
	jwt, err := token.Participant{APIKey: "k", APISecret: "s", Room: "lobby", Identity: "p", AgentName: "arc-voice", AgentMetadata: `{"greet":true}`}.Mint()
	if err != nil {
		t.Fatal(err)
	}
	cfg := verify(t, jwt, "s").GetRoomConfiguration()
	if cfg == nil || len(cfg.Agents) != 1 || cfg.Agents[0].AgentName != "arc-voice" || cfg.Agents[0].Metadata != `{"greet":true}` {
		t.Fatalf("room configuration %v", cfg)
	}
}

func TestBadInputIsBadRequest(t *testing.T) {
	ok := token.Participant{APIKey: "k", APISecret: "s", Room: "lobby", Identity: "p"}
	for name, p := range map[string]token.Participant{
		"no secret":      {APIKey: "k", Room: "lobby", Identity: "p"},
		"room with /":    {APIKey: "k", APISecret: "s", Room: "a/b", Identity: "p"},
		"room w/ space":  {APIKey: "k", APISecret: "s", Room: "a b", Identity: "p"},
		"room too long":  {APIKey: "k", APISecret: "s", Room: strings.Repeat("r", 257), Identity: "p"},
		"empty identity": {APIKey: "k", APISecret: "s", Room: "lobby"},
		"ttl too short":  {APIKey: "k", APISecret: "s", Room: "lobby", Identity: "p", TTL: time.Second},
		"ttl too long":   {APIKey: "k", APISecret: "s", Room: "lobby", Identity: "p", TTL: 48 * time.Hour},
	} {
		if _, err := p.Mint(); wire.CodeOf(err) != wire.BadRequest {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ok.Mint(); err != nil {
		t.Fatal(err)
	}
}

type liveKit struct{ url, key, secret string }

func liveKitFromEnv(t *testing.T) liveKit {
	lk := liveKit{os.Getenv("ARC_TEST_LIVEKIT_URL"), os.Getenv("ARC_TEST_LIVEKIT_API_KEY"), os.Getenv("ARC_TEST_LIVEKIT_API_SECRET")}
	if lk.url == "" || lk.key == "" || lk.secret == "" {
		t.Skip("ARC_TEST_LIVEKIT_URL/_API_KEY/_API_SECRET not set: no LiveKit server to check tokens against")
	}
	return lk
}

// The real server accepts the token for its room and refuses one signed with another secret.
func TestLiveKitServerValidatesToken(t *testing.T) {
	lk := liveKitFromEnv(t)
	httpURL := strings.Replace(lk.url, "ws://", "http://", 1)
	validate := func(jwt string) int {
		req, _ := http.NewRequest(http.MethodGet, httpURL+"/rtc/validate", nil)
		req.Header.Set("Authorization", "Bearer "+jwt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good, _ := token.Participant{APIKey: lk.key, APISecret: lk.secret, Room: "go-sdk-validate", Identity: "go-1"}.Mint()
	if code := validate(good); code != http.StatusOK {
		t.Fatalf("the server refused the token: HTTP %d", code)
	}
	forged, _ := token.Participant{APIKey: lk.key, APISecret: lk.secret + "x", Room: "go-sdk-validate", Identity: "go-1"}.Mint()
	if code := validate(forged); code != http.StatusUnauthorized {
		t.Fatalf("a token with the wrong secret got HTTP %d", code)
	}
}

// Joining with the token creates the room with the agent dispatch the token asked for: the
// server lists it, and the participant is in the room under its identity.
func TestJoinCreatesRoomWithAgentDispatch(t *testing.T) {
	lk := liveKitFromEnv(t)
	room := "go-sdk-dispatch-" + time.Now().Format("150405.000")
	room = strings.ReplaceAll(room, ".", "")
	jwt, err := token.Participant{APIKey: lk.key, APISecret: lk.secret, Room: room, Identity: "go-caller", AgentName: "arc-voice"}.Mint()
	if err != nil {
		t.Fatal(err)
	}
	joined, err := lksdk.ConnectToRoomWithToken(lk.url, jwt, &lksdk.RoomCallback{}, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatalf("joining %s: %v", room, err)
	}
	defer joined.Disconnect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	httpURL := strings.Replace(lk.url, "ws://", "http://", 1)
	rooms := lksdk.NewRoomServiceClient(httpURL, lk.key, lk.secret)
	parts, err := rooms.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: room})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Participants) != 1 || parts.Participants[0].Identity != "go-caller" {
		t.Fatalf("participants %v", parts.Participants)
	}
	dispatches, err := lksdk.NewAgentDispatchServiceClient(httpURL, lk.key, lk.secret).
		ListDispatch(ctx, &livekit.ListAgentDispatchRequest{Room: room})
	if err != nil {
		t.Fatal(err)
	}
	if len(dispatches.AgentDispatches) != 1 || dispatches.AgentDispatches[0].AgentName != "arc-voice" {
		t.Fatalf("dispatches %v", dispatches.AgentDispatches)
	}
}
