"""Facts stated in ordinary speech, and requests to forget them, found by rules."""

from __future__ import annotations

import time

import pytest
from arc_brain.facts import Forget, Statement, forget_request, statement

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "content", "slot"),
    [
        # names
        ("my name is Dana", "my name is Dana", "name"),
        ("Actually, my name is Dani.", "my name is Dani", "name"),
        ("Well, my name's Dana!", "my name's Dana", "name"),
        ("my name is dana smith", "my name is Dana Smith", "name"),
        ("Hi, I'm Dana", "I'm Dana", "name"),
        ("I am Dana, nice to meet you", "I am Dana", "name"),
        ("you can call me Dani", "call me Dani", "name"),
        ("my name is Will", "my name is Will", "name"),
        ("my last name is Smith", "my last name is Smith", "surname"),
        # likes and dislikes
        ("I love sailing", "I love sailing", "likes:sailing"),
        ("so, by the way, I love sailing, actually.", "I love sailing", "likes:sailing"),
        ("I really like jazz", "I really like jazz", "likes:jazz"),
        ("I enjoy hiking in the mountains", "I enjoy hiking in the mountains", "likes:hiking"),
        ("I like playing the guitar", "I like playing the guitar", "likes:playing guitar"),
        ("I'm a big fan of jazz music", "I'm a big fan of jazz music", "likes:jazz music"),
        ("I hate mushrooms", "I hate mushrooms", "dislikes:mushrooms"),
        ("I don't like mushrooms", "I don't like mushrooms", "dislikes:mushrooms"),
        ("I can't stand Mondays", "I can't stand Mondays", "dislikes:mondays"),
        # family, friends, pets
        ("my sister lives in Lyon", "my sister lives in Lyon", "sister"),
        ("oh and my sister moved to Paris", "my sister moved to Paris", "sister"),
        ("My sister Anna lives in Lyon", "my sister Anna lives in Lyon", "sister"),
        ("my mom lives in Spain", "my mom lives in Spain", "mother"),
        ("my sister's name is Anna", "my sister's name is Anna", "sister:name"),
        (
            "my little brother is called Sam",
            "my little brother is called Sam",
            "younger brother:name",
        ),
        ("my sister is a doctor", "my sister is a doctor", "sister:job"),
        ("my mum's birthday is June 5th", "my mum's birthday is June 5th", "mother:birthday"),
        ("my dog is called Rex", "my dog is called Rex", "pet:dog"),
        ("my dog's name is Rex", "my dog's name is Rex", "pet:dog"),
        ("my dog is 5 years old", "my dog is 5 years old", "pet:dog:age"),
        ("I have two cats", "I have two cats", "pets"),
        ("I've got a dog", "I've got a dog", "pets"),
        # about the user
        ("I'm allergic to peanuts", "I'm allergic to peanuts", "allergy:peanuts"),
        ("I am allergic to cats and dogs", "I am allergic to cats and dogs", "allergy:cats"),
        ("I live in Berlin.", "I live in Berlin", "home"),
        ("I'm from Berlin", "I'm from Berlin", "home"),
        ("I work as a nurse", "I work as a nurse", "job"),
        ("I'm a nurse", "I'm a nurse", "job"),
        ("I work at Acme", "I work at Acme", "job"),
        ("I'm a software engineer at Acme", "I'm a software engineer at Acme", "job"),
        ("I'm a vegetarian", "I'm a vegetarian", "diet"),
        ("I'm married", "I'm married", "relationship"),
        ("I'm 34 years old", "I'm 34 years old", "age"),
        ("I just turned 40", "I just turned 40", "age"),
        ("my birthday is on March 3rd", "my birthday is on March 3rd", "birthday"),
        ("I was born on the 3rd of March", "I was born on the 3rd of March", "birthday"),
        ("I was born in 1990", "I was born in 1990", "birthyear"),
        # favourites and the generic "my X is Y"
        ("my favourite colour is green", "my favourite colour is green", "favourite:colour"),
        ("my favorite color is green", "my favorite color is green", "favourite:colour"),
        ("my favorite food is pizza", "my favorite food is pizza", "favourite:food"),
        ("pizza is my favourite food", "pizza is my favourite food", "favourite:food"),
        ("my car is blue", "my car is blue", "car"),
        ("my car is a Toyota", "my car is a Toyota", "car"),
        ("my car's colour is blue", "my car's colour is blue", "car:colour"),
        ("my phone number is 555 1234", "my phone number is 555 1234", "phone number"),
        ("my office is in Berlin", "my office is in Berlin", "office"),
    ],
)
def test_statements(text: str, content: str, slot: str) -> None:
    assert statement(text) == Statement(content=content, slot=slot)


@pytest.mark.parametrize(
    "text",
    [
        # questions
        "what is my name?",
        "what is my name",
        "do you know my sister?",
        "is my car blue",
        "what is my favourite colour",
        # commands, and the router's own "remember that ..."
        "tell me a joke",
        "call me back",
        "remember that my car is blue",
        # hypotheticals, hedges, negations, the past
        "if my name were Bob",
        "I think my name is Bob",
        "my name is not Bob",
        "I don't live in Berlin",
        "I used to live in Berlin",
        "I'd love a coffee",
        # about the assistant, or about nothing in particular
        "you are funny",
        "I love you",
        "I like your voice",
        "I like it",
        "this is my favourite song",
        # states, not facts
        "I'm fine",
        "I'm good",
        "I'm tired",
        "I'm not sure",
        "I'm looking for a restaurant",
        "I'm a bit tired",
        "I'm a morning person",
        "I'm a terrible cook",
        "my house is a mess",
        "my car is the best",
        "I'm in Berlin",
        "I work in the mornings",
        "I have a headache",
        "my head is killing me",
        "my phone is dead",
        "my car is in the garage",
        "my birthday is tomorrow",
        "my sister is annoying",
        # "I'm X" is a name only for a lone capitalised name
        "i'm dana",
        "I'm Dana Smith",
        "I'm English",
        # more than one fact at once, or a monologue
        "my name is Dana and I live in Berlin",
        "I love sailing and I live in Berlin",
        "Hi. My name is Dana.",
        "I love sailing " * 25,
        # secrets only through an explicit "remember that"
        "my password is hunter2",
        "",
    ],
)
def test_not_statements(text: str) -> None:
    assert statement(text) is None


@pytest.mark.parametrize(
    ("first", "second", "slot"),
    [
        ("my name is Dana", "actually my name is Dani", "name"),
        ("my name is Dana", "I'm Dani", "name"),
        ("my name's Dana", "call me Dani", "name"),
        ("my sister lives in Lyon", "my sister moved to Paris", "sister"),
        ("my mom lives in Spain", "my mother moved to Lisbon", "mother"),
        ("my dog is called Rex", "my dog's name is Max", "pet:dog"),
        ("my favourite colour is green", "my favorite color is red", "favourite:colour"),
        ("I live in Berlin", "I'm from Munich", "home"),
        ("I work as a nurse", "I'm a teacher", "job"),
        ("I'm 34", "I'm 35 years old", "age"),
        ("I love sailing", "I really love sailing", "likes:sailing"),
        ("I hate mushrooms", "I can't stand mushrooms", "dislikes:mushrooms"),
    ],
)
def test_rephrasings_share_a_slot(first: str, second: str, slot: str) -> None:
    old, new = statement(first), statement(second)
    assert old is not None and new is not None
    assert old.slot == new.slot == slot


@pytest.mark.parametrize(
    ("text", "topic", "slot_prefix"),
    [
        ("forget my sister", "sister", "sister"),
        ("forget what I told you about my sister", "sister", "sister"),
        ("Forget about my sister.", "sister", "sister"),
        ("can you forget my sister?", "sister", "sister"),
        ("please forget that I love sailing", "sailing", "likes:sailing"),
        ("forget that I'm allergic to peanuts", "peanuts", "allergy:peanuts"),
        ("forget my name", "name", "name"),
        ("could you please forget my name?", "name", "name"),
        ("don't remember my allergy", "allergy", "allergy"),
        ("delete my address", "address", "address"),
        ("delete my address from your memory", "address", "address"),
        ("forget my sister's name", "sister's name", "sister:name"),
        ("forget my mom", "mom", "mother"),
        ("forget my dog", "dog", "pet:dog"),
        ("forget my favourite colour", "favourite colour", "favourite:colour"),
        ("forget where I live", "home", "home"),
        ("forget what I told you about peanuts", "peanuts", None),
        ("forget about sailing", "sailing", None),
        ("erase everything you know about my brother", "brother", "brother"),
    ],
)
def test_forget_requests(text: str, topic: str, slot_prefix: str | None) -> None:
    assert forget_request(text) == Forget(topic=topic, slot_prefix=slot_prefix)


@pytest.mark.parametrize(
    "text",
    [
        "forget it",
        "forget about it",
        "Forget it!",
        "never mind",
        "forget that",
        "forget everything",
        "forget what I said",
        "forget about me",
        "forget my last message",
        "did you forget my name?",
        "don't forget my birthday",
        "remember my sister",
        "delete my alarm",
        "clear my calendar",
        "my sister lives in Lyon",
    ],
)
def test_not_forget_requests(text: str) -> None:
    assert forget_request(text) is None


def test_statement_and_forget_agree_on_slots() -> None:
    said = statement("my sister moved to Paris")
    forget = forget_request("forget my sister")
    assert said is not None and forget is not None
    assert said.slot == forget.slot_prefix == "sister"


def test_fast() -> None:
    texts = ["I enjoy hiking in the mountains", "what is my name?", "forget my sister's name"]
    start = time.perf_counter()
    for _ in range(100):
        for text in texts:
            statement(text)
            forget_request(text)
    per_call = (time.perf_counter() - start) / 600
    assert per_call < 1e-3
