"""The pure parts of short-window Whisper: how long a window to encode, how many tokens a
window may produce, and cutting output that loops.

Whisper was trained on 30 s windows of speech followed by padding. Encoding only the audio
there is (whisper.cpp's `audio_ctx`) is several times faster, but the model then sees no
padding to tell it the speech is over, and often starts the sentence again instead of ending
it ("What time is it? What time is it? What"). `cut_repetition` removes those loops.
"""

from __future__ import annotations

import math
import re

# Whisper's log-Mel frames: 100 per second (hop of 160 samples at 16 kHz).
FRAMES_PER_SECOND = 100
# The encoder halves the frames with a stride-2 convolution: windows are rounded up to even.
_FRAME_MULTIPLE = 2
FULL_WINDOW_S = 30.0

_WORD_CORE = re.compile(r"[\w']+")


def window_frames(duration_s: float, *, step_s: float, tail_s: float) -> int:
    """Log-Mel frames to encode for `duration_s` of audio: the audio plus at least `tail_s` of
    padding, rounded up to whole `step_s` steps (so a handful of window lengths repeat), and
    never more than Whisper's 30 s."""
    if step_s <= 0:
        raise ValueError("step_s must be positive")
    if duration_s < 0 or tail_s < 0:
        raise ValueError("durations cannot be negative")
    steps = max(1, math.ceil(round((duration_s + tail_s) / step_s, 6)))
    seconds = min(FULL_WINDOW_S, steps * step_s)
    frames = round(seconds * FRAMES_PER_SECOND)
    return frames + (-frames) % _FRAME_MULTIPLE


def max_new_tokens(duration_s: float) -> int:
    """A ceiling on the tokens Whisper may produce for `duration_s` of speech. Fast speech with
    numbers and punctuation stays under ~6 tokens a second; the ceiling keeps a decode that
    loops from spending time on tokens `cut_repetition` would throw away."""
    return max(16, math.ceil(duration_s * 8) + 8)


def has_words(text: str) -> bool:
    """Whether `text` holds anything spoken (not only punctuation, which Whisper writes for
    silence)."""
    return _WORD_CORE.search(text) is not None


def _key(word: str) -> str:
    return "".join(_WORD_CORE.findall(word.lower()))


def cut_repetition(text: str) -> str:
    """`text` without the part where it loops back to its start.

    The output is cut at the first word from which everything that follows repeats the text
    from its beginning (case and punctuation aside), as long as at least two words repeat: a
    single doubled word ("bye bye") is speech, "thank you thank you" is taken to be a loop.
    The last word only has to begin like the word it repeats: the decode may have stopped
    inside it.
    """
    words = text.split()
    keys = [_key(word) for word in words]
    n = len(words)
    for period in range(1, n - 1):
        # The last word may be cut short where the decode hit its token ceiling.
        if all(keys[i] == keys[i - period] for i in range(period, n - 1)) and keys[
            n - 1 - period
        ].startswith(keys[n - 1]):
            return " ".join(words[:period])
    return text
