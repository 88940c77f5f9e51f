"""Backchannels: the "mm-hmm"s and "yeah"s a listener says while the other one talks.

Said over the agent, they mean "go on", not "stop": the words are heard (the VAD pauses the
agent at once, as for any speech), but when the transcript holds nothing else, the utterance is
dropped instead of becoming a turn, and the framework's false-interruption handling resumes the
answer where it paused. Anything with more in it ("yeah, but what about tomorrow?", "stop")
interrupts as usual.
"""

from __future__ import annotations

import re

# Whisper's spellings of the sounds and the short acknowledgements, lower case, unpunctuated.
BACKCHANNELS = frozenset(
    {
        "mm", "mmm", "mhm", "mm-hmm", "mm hmm", "mmhmm", "mm-hm", "hmm", "hm", "uh-huh",
        "uh huh", "uh", "um", "ah", "oh", "yeah", "yep", "yes", "right", "okay", "ok", "sure",
        "i see", "got it", "uh-hmm", "aha", "oh okay", "okay okay", "yeah yeah",
    }
)  # fmt: skip
_NOT_WORDS = re.compile(r"[^\w\s'-]+")


# Whisper tiny.en writes a hum as it hears it ("MMOM", "Mhmm", "Hmmm"): one short word of
# only these letters is a hum, not a word.
_HUM = re.compile(r"^(?=.*[mh])[mhou]{2,12}$")


def is_backchannel(transcript: str) -> bool:
    """True when the transcript is only an acknowledgement or a hum (or nothing at all)."""
    words = _NOT_WORDS.sub(" ", transcript.lower()).split()
    if not words:
        return True
    if len(words) == 1 and _HUM.match(words[0].replace("-", "")):
        return True
    return " ".join(words) in BACKCHANNELS
