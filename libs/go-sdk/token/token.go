// Package token mints LiveKit access tokens for rooms the Arc agent serves, with the grants
// and lifetime the Python side uses (arc_voice.caller.participant_token, settings.token_ttl_s).
package token

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"

	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Bounds of a token's lifetime, the voice service's token_ttl_s range.
const (
	DefaultTTL = time.Hour
	MinTTL     = time.Minute
	MaxTTL     = 24 * time.Hour
	roomMax    = 256
)

// Participant describes the person a token is for.
type Participant struct {
	APIKey, APISecret string
	Room              string
	Identity          string
	// Name is shown to others in the room; the identity when empty.
	Name string
	// TTL defaults to DefaultTTL and must lie within MinTTL..MaxTTL.
	TTL time.Duration
	// AgentName, when set, dispatches that LiveKit Agents worker to the room when the
	// participant's join creates it (the room configuration's agent dispatch). Empty means
	// the agent joins on Arc's own request (POST /rooms/{room}/agent), as today's voice worker
	// does until it registers for dispatch.
	AgentName string
	// AgentMetadata is handed to the dispatched agent's job.
	AgentMetadata string
}

// CheckRoomName applies the voice worker's rule for room names (1..256 characters, no white
// space or '/'), so a token is never minted for a room the agent refuses to join.
func CheckRoomName(room string) error {
	name := strings.TrimSpace(room)
	n := utf8.RuneCountInString(name)
	if name != room || n == 0 || n > roomMax || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || r == '/' }) {
		return wire.Errorf(wire.BadRequest, "invalid room name %q: 1..256 characters, no spaces or '/'", room)
	}
	return nil
}

// Mint returns the signed JWT: join room, publish and subscribe, nothing more.
func (p Participant) Mint() (string, error) {
	if p.APIKey == "" || p.APISecret == "" {
		return "", wire.Errorf(wire.BadRequest, "an API key and secret are required")
	}
	if err := CheckRoomName(p.Room); err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(p.Identity); n < 1 || n > 128 {
		return "", wire.Errorf(wire.BadRequest, "identity must be 1..128 characters, got %d", n)
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < MinTTL || ttl > MaxTTL {
		return "", wire.Errorf(wire.BadRequest, "ttl %s is outside %s..%s", ttl, MinTTL, MaxTTL)
	}
	name := p.Name
	if name == "" {
		name = p.Identity
	}
	canPublish, canSubscribe := true, true
	at := auth.NewAccessToken(p.APIKey, p.APISecret).
		SetIdentity(p.Identity).
		SetName(name).
		SetValidFor(ttl).
		SetVideoGrant(&auth.VideoGrant{
			RoomJoin:     true,
			Room:         p.Room,
			CanPublish:   &canPublish,
			CanSubscribe: &canSubscribe,
		})
	if p.AgentName != "" {
		at.SetRoomConfig(&livekit.RoomConfiguration{
			Agents: []*livekit.RoomAgentDispatch{{AgentName: p.AgentName, Metadata: p.AgentMetadata}},
		})
	}
	jwt, err := at.ToJWT()
	if err != nil {
		return "", wire.Errorf(wire.Internal, "signing the token: %v", err)
	}
	return jwt, nil
}
