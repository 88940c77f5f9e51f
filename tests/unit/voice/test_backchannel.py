"""Which transcripts said over the agent are only acknowledgements."""

from __future__ import annotations

import pytest
from arc_voice.backchannel import is_backchannel

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    [
        "Mm-hmm.",
        "mm hmm",
        "Uh-huh!",
        "Yeah.",
        "Okay.",
        "Right",
        "Hmm?",
        "I see.",
        "MMOM",
        "Mmmmmmmmm",
        "",
        " .",
    ],
)
def test_acknowledgements_are_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize(
    "text",
    [
        "Stop.",
        "Wait.",
        "Yeah, but what about tomorrow?",
        "No.",
        "What time is it?",
        "Okay, stop please.",
        "Thanks",
        "Man.",
    ],
)
def test_anything_more_interrupts(text: str) -> None:
    assert not is_backchannel(text)
