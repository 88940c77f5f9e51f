"""Text for the TTS service, as the brain shaped it.

The brain streams speakable units (contract: a `delta` is a sentence or clause, and its first
one is short on purpose), so each unit the session pushes goes to the TTS as it is: cutting
again here would undo the brain's short first piece and delay the first audio. The only cut
left is the one the TTS's own limit requires.
"""

from __future__ import annotations

from arc_common.wire import TTS_TEXT_MAX


def within_limit(text: str, limit: int = TTS_TEXT_MAX) -> list[str]:
    """`text` as pieces of at most `limit` characters, cut at a comma or a space where one is
    near the limit; empty text gives none."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind(","), window.rfind(" "))
        cut = cut + 1 if cut > 0 else limit
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces
