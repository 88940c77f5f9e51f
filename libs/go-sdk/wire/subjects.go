package wire

// NATS subjects and queue groups of the v1 contract (arc_common.subjects).
const (
	SubjectBrainRequest = "brain.request"
	SubjectBrainCancel  = "brain.cancel"
	SubjectBrainCommit  = "brain.commit"
	QueueBrain          = "brain"

	SubjectTTSRequest = "tts.request"
	SubjectTTSCancel  = "tts.cancel"
	QueueTTS          = "tts"

	SubjectTrackPublished   = "agent.voice.track_published"
	SubjectTrackUnpublished = "agent.voice.track_unpublished"
	SubjectSessionStarted   = "agent.session.started"
	SubjectSessionEnded     = "agent.session.ended"
	SubjectAnnounce         = "agent.voice.announce"
)

// Prefixed is subject under a namespace prefix; tests give each test its own prefix.
func Prefixed(prefix, subject string) string {
	if prefix == "" {
		return subject
	}
	return prefix + "." + subject
}
