"""The numpy all-MiniLM-L6-v2 against the reference model's published similarities, and the
skills router on top of it. Loads the model from the wheel (offline) once per module."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from arc_brain.embedding import DIMENSIONS, MiniLmEmbedder
from arc_brain.settings import BrainOptions
from arc_brain.skills import Route, Router

from tests.fixtures.brain import model_dir

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def embedder() -> Iterator[MiniLmEmbedder]:
    model = MiniLmEmbedder(model_dir())
    yield model
    model.close()


@pytest.fixture(scope="module")
def router(embedder: MiniLmEmbedder) -> Router:
    return Router.from_examples(embedder.encode(Router.example_texts()))


def test_matches_reference_similarities(embedder: MiniLmEmbedder) -> None:
    # Cosine similarities printed by sentence-transformers for all-MiniLM-L6-v2 (PyTorch) in
    # its documentation's quickstart and semantic-similarity examples.
    vectors = embedder.encode(
        [
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
            "The new movie is awesome",
            "The new movie is so great",
            "The cat sits outside",
            "The dog plays in the garden",
        ]
    )
    sims = vectors @ vectors.T
    assert sims[0, 1] == pytest.approx(0.6660, abs=1e-3)
    assert sims[0, 2] == pytest.approx(0.1046, abs=1e-3)
    assert sims[1, 2] == pytest.approx(0.1411, abs=1e-3)
    assert sims[3, 4] == pytest.approx(0.8939, abs=1e-3)
    assert sims[5, 6] == pytest.approx(0.2838, abs=1e-3)


def test_similar_sentences_are_close_and_unrelated_ones_far(embedder: MiniLmEmbedder) -> None:
    a, b, c = embedder.encode(
        ["What colour is my car?", "What color is my automobile?", "I had pasta for lunch."]
    )
    assert float(a @ b) > 0.7
    assert float(a @ c) < 0.3


def test_unit_length_and_batch_independence(embedder: MiniLmEmbedder) -> None:
    texts = ["hi", "a much longer sentence that needs padding of the shorter ones in a batch"]
    batch = embedder.encode(texts)
    assert batch.shape == (2, DIMENSIONS) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, text in enumerate(texts):
        assert np.allclose(embedder.encode([text])[0], batch[i], atol=1e-5)
    assert embedder.encode([]).shape == (0, DIMENSIONS)


async def test_embed_runs_off_the_event_loop(embedder: MiniLmEmbedder) -> None:
    vector = await embedder.embed("hello")
    assert vector.shape == (DIMENSIONS,)


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("hey, good morning!", Route.GREETING),
        ("what can you help me with?", Route.HELP),
        ("what's the time right now?", Route.TIME),
        ("what is the date?", Route.DATE),
        ("what's the colour of my bike?", Route.RECALL),
        ("what did we talk about so far?", Route.SUMMARISE),
        ("explain quantum chromodynamics to a toddler", Route.FALLBACK),
        ("repeat after me: I am a robot", Route.REPEAT),
        ("remember that my bike is red", Route.REMEMBER),
    ],
)
def test_router(embedder: MiniLmEmbedder, router: Router, text: str, route: Route) -> None:
    assert router.route(text, embedder.encode([text])[0]).route is route


@pytest.mark.parametrize(
    ("text", "route"),
    [
        # Paraphrases under the old 0.7 floor went to the model, which invents a time.
        ("how late is it?", Route.TIME),
        ("how do you work?", Route.HELP),
        ("remind me what we discussed", Route.SUMMARISE),
        # The nearest non-skill questions stay with the model.
        ("what time does the sun set in winter?", Route.LLM),
        ("what's the time difference between London and Tokyo?", Route.LLM),
        ("summarise the plot of Romeo and Juliet", Route.LLM),
    ],
)
def test_router_with_a_model_at_the_shipped_floor(
    embedder: MiniLmEmbedder, router: Router, text: str, route: Route
) -> None:
    floor = BrainOptions().llm_route_min_similarity
    vector = embedder.encode([text])[0]
    assert router.by_meaning_with_llm(vector, floor).route is route
