"""Facts about the user, stated in ordinary speech, found by rules.

`statement` turns "my sister lives in Lyon" into the fact as the user said it and a *slot*:
the thing the fact is about. A newer fact in the same slot replaces the older one, so slots
must not depend on the wording: "my name is Dana" and "actually my name is Dani" share the
slot "name". `forget_request` reads "forget what I told you about my sister" as the topic to
drop and, when the scheme knows it, the slot it maps to.

The rules are conservative on purpose: storing a false fact about someone is worse than
missing a true one, so questions, hypotheticals, negations (other than dislikes), passing
states ("I'm tired"), several clauses at once and anything over `MAX_CHARS` are not facts.
Secrets (passwords, PINs, card numbers) are never picked up from ordinary speech; only an
explicit "remember that ..." (handled by the router) stores them.

Slot scheme. Slots are lower case; ":" separates a subject from one of its attributes; a
segment may hold spaces ("phone number", "older sister"):

- about the user: "name", "surname", "age", "birthday", "birthyear", "birthplace", "home"
  (where they live or come from), "job", "diet", "relationship", "pets" (how many),
  "children" (how many), "siblings" (how many);
- opinions and allergies, keyed on the first content words of the object, lower case:
  "likes:sailing", "dislikes:mushrooms", "allergy:peanuts" ("I enjoy hiking in the
  mountains" -> "likes:hiking"; "I like playing the guitar" -> "likes:playing guitar");
  a store that fills "likes:x" should drop "dislikes:x" and the reverse;
- favourites: "favourite:<what>" with British spelling, so "my favorite color" and "my
  favourite colour" meet in "favourite:colour";
- relatives and friends: "<relative>" holds where they live or come from, with sub-slots
  "<relative>:name", "<relative>:age", "<relative>:job", "<relative>:birthday" and
  "<relative>:<attribute>" for "my sister's <attribute> is ...". The relative is
  canonical ("mom", "mum" -> "mother"; "little brother" -> "younger brother"), so "my sister
  lives in Lyon" and "my sister moved to Paris" both fill "sister";
- pets: "pet:<animal>" holds the pet's name ("my dog is called Rex"), with sub-slots
  "pet:<animal>:age" and "pet:<animal>:<attribute>";
- anything else said as "my X is Y": the slot is X ("my car is blue" -> "car"), and "my X's
  Y is Z" gives "x:y".

A `Forget.slot_prefix` p covers a slot s when s == p or s starts with p + ":", so "sister"
covers "sister" and "sister:name" but not "sisters".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_CHARS = 300


@dataclass(frozen=True, slots=True)
class Statement:
    """A fact the user stated about themselves.

    `content` is the fact in the user's words, first person, without fillers or final
    punctuation ("my sister lives in Lyon"); `slot` is what it is about (see the scheme)."""

    content: str
    slot: str


@dataclass(frozen=True, slots=True)
class Forget:
    """A request to forget: `topic` in lower case as the user named it ("sister", "peanuts"),
    and `slot_prefix`, the slot or slot prefix it maps to, or None when the scheme cannot
    tell (then only `topic` can find the facts)."""

    topic: str
    slot_prefix: str | None


_I = re.IGNORECASE


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --- vocabulary --------------------------------------------------------------------------

_RELATIVES = {
    "mother": "mother",
    "mom": "mother",
    "mum": "mother",
    "mommy": "mother",
    "mummy": "mother",
    "mama": "mother",
    "father": "father",
    "dad": "father",
    "daddy": "father",
    "papa": "father",
    "parents": "parents",
    "grandparents": "grandparents",
    "grandmother": "grandmother",
    "grandma": "grandmother",
    "granny": "grandmother",
    "nana": "grandmother",
    "grandfather": "grandfather",
    "grandpa": "grandfather",
    "granddad": "grandfather",
    "grandad": "grandfather",
    "sister": "sister",
    "brother": "brother",
    "wife": "wife",
    "husband": "husband",
    "partner": "partner",
    "spouse": "spouse",
    "girlfriend": "girlfriend",
    "boyfriend": "boyfriend",
    "fiance": "fiance",
    "fiancé": "fiance",
    "fiancee": "fiance",
    "fiancée": "fiance",
    "son": "son",
    "daughter": "daughter",
    "aunt": "aunt",
    "auntie": "aunt",
    "uncle": "uncle",
    "cousin": "cousin",
    "niece": "niece",
    "nephew": "nephew",
    "best friend": "best friend",
    "friend": "friend",
    "boss": "boss",
    "colleague": "colleague",
    "coworker": "colleague",
    "co-worker": "colleague",
    "roommate": "roommate",
    "flatmate": "roommate",
    "housemate": "roommate",
    "neighbour": "neighbour",
    "neighbor": "neighbour",
}
_AGE_MODIFIERS = {
    "older": "older",
    "elder": "older",
    "eldest": "older",
    "oldest": "older",
    "big": "older",
    "younger": "younger",
    "youngest": "younger",
    "little": "younger",
    "baby": "younger",
    "twin": "twin",
}
_PETS = {
    "dog": "dog",
    "puppy": "dog",
    "cat": "cat",
    "kitten": "cat",
    "kitty": "cat",
    "rabbit": "rabbit",
    "bunny": "rabbit",
    "hamster": "hamster",
    "guinea pig": "guinea pig",
    "parrot": "parrot",
    "budgie": "budgie",
    "bird": "bird",
    "fish": "fish",
    "goldfish": "goldfish",
    "horse": "horse",
    "pony": "pony",
    "turtle": "turtle",
    "tortoise": "tortoise",
    "snake": "snake",
    "lizard": "lizard",
    "gecko": "gecko",
    "ferret": "ferret",
    "rat": "rat",
    "mouse": "mouse",
    "chinchilla": "chinchilla",
    "hedgehog": "hedgehog",
}
_PETS_PLURAL = (
    "pets|dogs|puppies|cats|kittens|rabbits|bunnies|hamsters|guinea pigs|parrots|budgies|birds"
    "|fish|goldfish|horses|ponies|turtles|tortoises|snakes|lizards|geckos|ferrets|rats|mice"
    "|chinchillas|hedgehogs"
)
# Only the head noun of "I'm a ..." is checked: "I'm a retired teacher" is a job, "I'm a
# morning person", "I'm a big eater" and "I'm a vegetarian" are not.
_OCCUPATIONS = _wordset(
    """
    accountant actor actress administrator analyst architect artist assistant attorney author
    baker banker barber barista bartender builder butcher carer caregiver carpenter cashier ceo
    chef chemist cleaner clerk coach composer consultant cook counselor counsellor cto dancer
    dentist designer developer director doctor driver economist editor electrician engineer
    entrepreneur executive farmer firefighter fisherman founder freelancer gardener guard
    hairdresser homemaker housewife intern janitor journalist judge lawyer lecturer librarian
    manager mathematician mechanic midwife miner musician nanny nurse officer painter
    paramedic pharmacist photographer physician physicist physiotherapist pilot plumber
    policeman policewoman politician postman producer professor programmer psychiatrist
    psychologist receptionist researcher salesman saleswoman scientist secretary singer
    soldier student surgeon tailor teacher technician therapist translator tutor vet
    veterinarian waiter waitress writer
    """
)
_COUNTS = (
    r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,2}"
    r"|a\s+couple\s+of|a\s+few|several|many|lots\s+of)"
)
_NUMBER_WORD = (
    r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[-\s]"
    r"(?:one|two|three|four|five|six|seven|eight|nine))?|one|two|three|four|five|six|seven"
    r"|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen"
    r"|nineteen|a\s+hundred|one\s+hundred)"
)
_MONTH = (
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b|\b\d{1,2}[/.-]\d{1,2}\b"
)

# Words that make a captured object or value about something other than a durable fact:
# "I love it", "I like your voice", "my favourite person is you", "I hate when ...".
_PRONOUNS = _wordset(
    """
    i me my mine you your yours yourself it its it's this that these those them they their he
    him his she her hers we us our everything something anything nothing everyone everybody
    someone somebody what how when where why who which whatever here there
    """
)
_STATES = _wordset(
    """
    fine good great ok okay alright bad terrible awful broken dead done ready gone over on off
    out up down back late early busy full empty sick ill hurt hurting sore missing lost stuck
    open closed tired low dying charging running loading fixed better worse ringing dirty
    clean messy wet cold hot warm due coming waiting almost nearly still too so really very
    kind sort killing driving acting mess best worst
    """
)
# Things "my X is ..." says that pass (my day, my head, my flight), stock phrases (my guess
# is, my point is) and secrets.
_GENERIC_SUBJECTS = _wordset(
    """
    name day week weekend morning afternoon evening night head back stomach throat tooth leg
    arm foot hand eye ear nose neck knee battery question problem point answer guess pleasure
    turn fault mistake mind plan order meeting appointment flight train bus call class lesson
    shift lunch dinner breakfast internet wifi connection screen timer alarm reminder volume
    life password passcode pin
    """
) | {
    "pin code",
    "credit card",
    "credit card number",
    "card number",
    "bank account",
    "account number",
    "social security number",
    "ssn",
}
_SUBJECT_ALIASES = {
    "occupation": "job",
    "profession": "job",
    "job title": "job",
    "career": "job",
    "work": "job",
    "hometown": "home",
    "home town": "home",
    "date of birth": "birthday",
    "birth date": "birthday",
    "bday": "birthday",
    "b-day": "birthday",
    "home address": "address",
    "e-mail": "email",
    "email address": "email",
    "e-mail address": "email",
    "mobile number": "phone number",
    "cell number": "phone number",
    "telephone number": "phone number",
    "first name": "name",
    "full name": "name",
    "last name": "surname",
    "family name": "surname",
    "allergies": "allergy",
    "favourites": "favourite",
    "favorites": "favourite",
    "kids": "children",
}
_SPELLING = {"color": "colour", "colors": "colours", "flavor": "flavour", "flavors": "flavours"}
_NAME_STOPWORDS = _wordset(
    """
    a an the is and or but not no on in of at to very so too what that this it spelled
    pronounced hard long weird unusual funny secret complicated
    """
)
# Capitalised words after "I'm" that are not names: "I'm Sorry" typed in title case, and
# nationalities, which are capitalised but describe, not name.
_NOT_NAMES = _wordset(
    """
    sorry fine good great ok okay back home here there ready done sure hungry bored busy sick
    alright well happy sad excited in out off on lost confused single married divorced retired
    tired new american english british french german spanish italian chinese japanese korean
    indian canadian australian irish scottish welsh dutch swiss swedish danish norwegian
    finnish polish russian greek turkish mexican brazilian portuguese thai vietnamese jewish
    muslim catholic hindu buddhist atheist vegan vegetarian
    """
)
_CALL_ME_NOT_NAMES = _wordset(
    "back later now tomorrow tonight today maybe crazy anytime sometime soon again please"
    " here there then when whenever once asap sometimes never"
)

_KEY_STOPS = _wordset(
    """
    , in on at with for from by during when while because but and or so since especially
    every each very too really much more than as like if after before around near about lot
    lots nowadays now these those all most any
    """
)
_KEY_SKIPS = _wordset("the a an some to of")

# --- normalisation -----------------------------------------------------------------------

_LEADING_FILLER = re.compile(
    r"^(?:well|oh|so|actually|by\s+the\s+way|btw|and|also|ok|okay|um+|uh+|er+m?|hmm+|anyway"
    r"|anyways|hey|hi|hello|yeah|yes|right|alright|just\s+so\s+you\s+know|fyi|fun\s+fact"
    r"|for\s+the\s+record|in\s+fact|honestly|basically|listen|look)\b[\s,:;-]*",
    _I,
)
_INNER_FILLER = re.compile(r",?\s*\b(?:actually|by\s+the\s+way|btw)\b,?", _I)
_TRAILING_FILLER = re.compile(
    r"(?:,?\s*\b(?:too|as\s+well|though|anyway|anyways|haha|lol|you\s+know|nice\s+to\s+meet"
    r"\s+you|pleased\s+to\s+meet\s+you|for\s+the\s+record|fyi)\b)+$",
    _I,
)
_TRAILING_PUNCTUATION = re.compile(r"[\s.!,;:\u2026]+$")
_SENTENCE_BREAK = re.compile(r"[.!?;:]\s")
_LOWER_I = re.compile(r"\bi\b")
_QUESTION_START = re.compile(
    r"^(?:what|what's|whats|who|who's|whom|whose|where|where's|when|when's|why|how|how's"
    r"|which|do|does|did|is|are|am|was|were|can|could|would|will|should|shall|have|has|had"
    r"|may|might|must|isn't|aren't|don't|doesn't|didn't|won't|wouldn't|can't|couldn't"
    r"|shouldn't|haven't|hasn't)\b",
    _I,
)
# A second clause ("... and I live in Berlin", "... because it ...") makes the utterance
# more than one fact; keeping only the first would store it out of context.
_SECOND_CLAUSE = re.compile(
    r"(?:,\s*|\s+)(?:and|but|so|because|cause|although|though|while|whereas|since|when)\s+"
    r"(?:i|i'm|i've|i'd|my|me|we|you|he|she|they|it|it's|that|there)\b",
    _I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|were|would|could|should|might|maybe|perhaps|wish|suppose|supposing|imagine"
    r"|pretend|pretending|unless|whether|probably|think|guess|assume|believe|hope|will|gonna"
    r"|used\s+to|let's\s+say|i'd)\b",
    _I,
)
_NEGATION = re.compile(r"\b(?:not|no|never|nobody|nothing|none|neither|nor|\w+n't|cannot)\b", _I)
# Dislikes are negative in form but positive facts; they are taken out before the negation
# check so that "I don't like mushrooms" survives it and "I don't live in Berlin" does not.
_DISLIKE_NEGATION = re.compile(
    r"\b(?:don't|do\s+not)(?:\s+(?:really|particularly|much))?\s+(?:like|enjoy|care\s+for)\b"
    r"|\bcan(?:'t|not)\s+stand\b"
    r"|\b(?:'m|am)\s+not\s+(?:(?:really|exactly)\s+)?(?:a\s+(?:big\s+|huge\s+|great\s+)?fan\s+of"
    r"|into|keen\s+on|fond\s+of)\b",
    _I,
)


def _clean(text: str) -> str | None:
    """The utterance as one tidy clause, or None when it is not shaped like a single fact."""
    if len(text) > MAX_CHARS:
        return None
    clause = " ".join(text.replace("\u2019", "'").replace("\u2018", "'").split())
    if "?" in clause:
        return None
    clause = _TRAILING_PUNCTUATION.sub("", clause)
    previous = None
    while previous != clause:
        previous = clause
        clause = _LEADING_FILLER.sub("", clause)
        clause = _TRAILING_FILLER.sub("", clause)
        clause = _TRAILING_PUNCTUATION.sub("", clause)
    clause = " ".join(_INNER_FILLER.sub("", clause).split())
    clause = _LOWER_I.sub("I", clause)
    if not clause or _SENTENCE_BREAK.search(clause):
        return None
    return clause


def _words(text: str) -> list[str]:
    return re.findall(r"\w[\w'\-]*|,", text.lower())


def _mid_sentence_name(clause: str, match: re.Match[str]) -> bool:
    # A capitalised word after the start is a name ("my name is Hope", "my brother Will").
    return match.start() > 0 and clause[match.start()].isupper()


def _gated(clause: str) -> bool:
    """Whether the clause may hold a fact at all."""
    if _QUESTION_START.match(clause) or _SECOND_CLAUSE.search(clause):
        return False
    for match in _HYPOTHETICAL.finditer(clause):
        if not _mid_sentence_name(clause, match):
            return False
    return not _NEGATION.search(_DISLIKE_NEGATION.sub(" ", clause))


def _tidy(content: str) -> str:
    first, _, rest = content.partition(" ")
    if first.lower() in {"my", "call"} and rest:
        return f"{first.lower()} {rest}"
    return content


def _is_plain_value(value: str, max_words: int = 8) -> bool:
    words = _words(value)
    return 0 < len(words) <= max_words and not any(word in _PRONOUNS for word in words)


def _key(phrase: str) -> str | None:
    """The first content words of an object, lower case: "hiking in the mountains" ->
    "hiking"."""
    words = _words(phrase)
    if not words or words[0] in _PRONOUNS or any(word in _PRONOUNS for word in words):
        return None
    kept: list[str] = []
    for word in words:
        if word in _KEY_STOPS:
            break
        if word in _KEY_SKIPS:
            continue
        kept.append(word)
        if len(kept) == 3:
            break
    return " ".join(kept) or None


def _subject(phrase: str) -> str:
    words = " ".join(_SPELLING.get(word, word) for word in phrase.lower().split())
    return _SUBJECT_ALIASES.get(words, words)


def _replace_span(clause: str, match: re.Match[str], group: str, value: str) -> str:
    return clause[: match.start(group)] + value + clause[match.end(group) :]


# --- rules -------------------------------------------------------------------------------

_Rule = Callable[[str], Statement | None]
_IM = r"I(?:'m|\s+am)"
_ADVERBS = (
    r"(?:(?:really|absolutely|just|also|totally|truly|genuinely|honestly|do|quite|kind\s+of"
    r"|kinda|sort\s+of|so|still|always|simply|especially|particularly|definitely|seriously"
    r"|very\s+much|pretty\s+much|much)\s+)*"
)
_NAME = r"[^\W\d_][\w'\-]*(?:\s+[^\W\d_][\w'\-]*){0,2}"
_CAPITALISED_NAME = r"(?-i:[A-Z][a-z]+(?:-[A-Z][a-z]+)?)"

_MY_NAME = re.compile(
    r"^my\s+(?:(?P<which>first|full|last|family)\s+name|(?P<surname>surname)|name)"
    rf"(?:'s|\s+is)\s+(?P<name>{_NAME})$",
    _I,
)
_CALLED = re.compile(rf"^(?:{_IM}\s+called|I\s+go\s+by)\s+(?P<name>{_NAME})$", _I)
_IM_NAME = re.compile(rf"^{_IM}\s+(?P<name>{_CAPITALISED_NAME})$", _I)
_CALL_ME = re.compile(
    rf"^(?:(?:you\s+can|you\s+may|please|just)\s+)*(?P<call>call\s+me\s+(?P<name>{_CAPITALISED_NAME}))$",
    _I,
)


def _name(clause: str) -> Statement | None:
    if match := _MY_NAME.match(clause) or _CALLED.match(clause):
        name = match.group("name")
        if any(word in _NAME_STOPWORDS for word in _words(name)):
            return None
        if name.islower():
            name = name.title()
        which = match.groupdict().get("which")
        surname = match.groupdict().get("surname") or which in {"last", "family"}
        content = _replace_span(clause, match, "name", name)
        return Statement(_tidy(content), "surname" if surname else "name")
    if (match := _IM_NAME.match(clause)) and match.group("name").lower() not in _NOT_NAMES:
        return Statement(clause, "name")
    if (match := _CALL_ME.match(clause)) and (
        match.group("name").lower() not in _CALL_ME_NOT_NAMES
    ):
        return Statement(_tidy(match.group("call")), "name")
    return None


_FAVOURITE = r"(?:(?:all[-\s]time|absolute|very|most)\s+)?favou?rite"
_MY_FAVOURITE = re.compile(
    rf"^my\s+{_FAVOURITE}\s+(?P<what>[a-z][a-z\s\-]{{0,30}}?)(?:'s|\s+is|\s+are)\s+(?P<value>.+)$",
    _I,
)
_IS_MY_FAVOURITE = re.compile(
    rf"^(?P<value>.+?)\s+(?:is|are)\s+my\s+{_FAVOURITE}\s+(?P<what>[a-z][a-z\s\-]{{0,30}})$",
    _I,
)


def _favourite(clause: str) -> Statement | None:
    match = _MY_FAVOURITE.match(clause) or _IS_MY_FAVOURITE.match(clause)
    if match is None or not _is_plain_value(match.group("value"), max_words=6):
        return None
    what = _subject(match.group("what"))
    if not what or any(word in _PRONOUNS for word in what.split()):
        return None
    return Statement(_tidy(clause), f"favourite:{what}")


_BIRTHDAY = re.compile(
    r"^(?:my\s+(?:birthday|bday|b-day|date\s+of\s+birth)(?:'s|\s+is)(?:\s+on)?"
    r"|I\s+was\s+born\s+on)\s+(?P<date>.+)$",
    _I,
)
_BORN_IN = re.compile(r"^I\s+was\s+born\s+in\s+(?P<where>.+)$", _I)


def _is_date(text: str) -> bool:
    return bool(re.search(_MONTH, text, _I)) and _is_plain_value(text, max_words=6)


def _birth(clause: str) -> Statement | None:
    if match := _BIRTHDAY.match(clause):
        return Statement(_tidy(clause), "birthday") if _is_date(match.group("date")) else None
    if match := _BORN_IN.match(clause):
        where = match.group("where")
        if re.fullmatch(r"(?:19|20)\d\d", where):
            return Statement(clause, "birthyear")
        if where[0].isupper() and _is_plain_value(where, max_words=4):
            return Statement(clause, "birthplace")
    return None


_AGE = re.compile(
    rf"^(?:{_IM}\s+(?:now\s+)?|I\s+(?:just\s+)?turned\s+)"
    rf"(?:(?P<n>\d{{1,3}})(?:\s+years?\s+(?:old|of\s+age))?|{_NUMBER_WORD}\s+years?\s+old)"
    r"(?:\s+today)?$",
    _I,
)


def _plausible_age(match: re.Match[str]) -> bool:
    # Only digits can be out of range: the number words go no higher than a hundred.
    n = match.group("n")
    return not n or 0 < int(n) <= 120


def _age(clause: str) -> Statement | None:
    match = _AGE.match(clause)
    if match is None or not _plausible_age(match):
        return None
    return Statement(clause, "age")


# "I've got a severe", "I have an": how both phrasings of an allergy start, the one that names
# it after the word ("... allergy to peanuts") and the one that names it before ("... peanut
# allergy").
_I_HAVE_AN = r"I(?:\s+have(?:\s+got)?|'ve\s+got)\s+(?:an?\s+)?(?:(?:severe|mild|bad)\s+)?"
_ALLERGIC = re.compile(
    rf"^(?:{_IM}\s+(?:(?:very|really|severely|highly|quite|mildly|deathly|so|a\s+bit|a\s+little)"
    rf"\s+)*allergic\s+to|{_I_HAVE_AN}allergy\s+to)\s+(?P<what>.+)$",
    _I,
)
_X_ALLERGY = re.compile(rf"^{_I_HAVE_AN}(?P<what>[a-z]+(?:\s+[a-z]+)?)\s+allergy$", _I)


def _allergy(clause: str) -> Statement | None:
    match = _ALLERGIC.match(clause) or _X_ALLERGY.match(clause)
    if match is None or (key := _key(match.group("what"))) is None:
        return None
    return Statement(clause, f"allergy:{key}")


_DIET = re.compile(
    rf"^{_IM}\s+(?:an?\s+)?(?:strict\s+)?(?:vegetarian|vegan|pescatarian|pescetarian"
    r"|gluten[-\s]free|lactose\s+intolerant|kosher|halal)$",
    _I,
)
_RELATIONSHIP = re.compile(
    rf"^{_IM}\s+(?:happily\s+)?(?:married|single|engaged|divorced|widowed|separated"
    rf"|in\s+a\s+relationship)(?:\s+to\s+{_CAPITALISED_NAME})?$",
    _I,
)


def _status(clause: str) -> Statement | None:
    if _DIET.match(clause):
        return Statement(clause, "diet")
    if _RELATIONSHIP.match(clause):
        return Statement(clause, "relationship")
    return None


_HOME = re.compile(
    r"^(?:I\s+(?:(?:now|currently|still|also)\s+)?live|I(?:'ve|\s+have)\s+(?:been\s+)?liv(?:ed|ing)"
    rf"|{_IM}\s+(?:now\s+|currently\s+)?living)\s+(?:in|near|at|on|just\s+outside(?:\s+of)?"
    rf"|outside(?:\s+of)?)\s+(?P<place>.+)$"
    rf"|^(?:{_IM}\s+(?:originally\s+)?from|I\s+(?:originally\s+)?come\s+from"
    r"|I\s+(?:just\s+|recently\s+)?moved\s+(?:back\s+)?to)\s+(?P<origin>.+)$",
    _I,
)


def _home(clause: str) -> Statement | None:
    match = _HOME.match(clause)
    if match is None:
        return None
    place = match.group("place") or match.group("origin")
    return Statement(clause, "home") if _is_plain_value(place) else None


# The two halves of "works as a nurse" and "is a nurse at Acme" that `_work` reads, the same
# after "I" as after "my sister".
_WORKS_AS = r"\s+(?:as|at|for|in)\s+(?P<what>.+)$"
_IS_A_JOB = (
    r"\s+(?:an?\s+)(?P<what>[\w\-]+(?:\s+[\w\-]+){0,3}?)"
    r"(?:\s+(?:at|for|in|with)\s+(?P<where>.+))?$"
)
_WORK = re.compile(
    rf"^(?:I\s+(?:(?:currently|now|still|also)\s+)?work|{_IM}\s+(?:currently\s+|now\s+)?working"
    rf"(?=\s+as\b)){_WORKS_AS}",
    _I,
)
_NOT_WORKPLACES = _wordset(
    "morning mornings evening evenings afternoon afternoons night nights weekend weekends day"
    " days shifts today tomorrow home garden remotely bed"
)
_IM_A = re.compile(rf"^{_IM}{_IS_A_JOB}", _I)
_NOT_EMPLOYED = re.compile(rf"^{_IM}\s+(?:retired|unemployed|self[-\s]employed)$", _I)


# "I'm a terrible cook" judges a skill; "I'm an aspiring writer" is not there yet.
_EVALUATIVE = _wordset(
    """
    good bad great terrible awful decent fast slow big huge careful lousy excellent amazing
    better worse lazy keen avid natural born wannabe aspiring future would-be
    """
)


def _occupation(what: str) -> bool:
    words = _words(what)
    return bool(words) and words[-1] in _OCCUPATIONS and not set(words) & _EVALUATIVE


def _work(text: str, works: re.Pattern[str], is_a: re.Pattern[str]) -> bool | None:
    """Whether `text`, matched by a "works as/at ..." or an "is a <job>" pattern, states a
    job; None when it says nothing about work, so that other rules may still read it."""
    if match := works.match(text):
        what = match.group("what")
        return _is_plain_value(what) and not set(_words(what)) & _NOT_WORKPLACES
    if (match := is_a.match(text)) and _occupation(match.group("what")):
        where = match.group("where")
        return where is None or _is_plain_value(where)
    return None


def _job(clause: str) -> Statement | None:
    if (works := _work(clause, _WORK, _IM_A)) is not None:
        return Statement(clause, "job") if works else None
    if _NOT_EMPLOYED.match(clause):
        return Statement(clause, "job")
    return None


_LIKE_VERBS = {
    "love": "likes",
    "like": "likes",
    "enjoy": "likes",
    "adore": "likes",
    "hate": "dislikes",
    "dislike": "dislikes",
    "detest": "dislikes",
    "loathe": "dislikes",
    "despise": "dislikes",
}
_LIKE = re.compile(
    rf"^I\s+{_ADVERBS}(?:(?P<neg>don't|do\s+not)\s+{_ADVERBS})?"
    r"(?P<verb>love|like|enjoy|adore|hate|dislike|detest|loathe|despise|care\s+for)\s+"
    r"(?P<what>.+)$"
    rf"|^I\s+{_ADVERBS}(?P<stand>can't|cannot|can\s+not)\s+stand\s+(?P<stood>.+)$",
    _I,
)
_FAN = re.compile(
    rf"^{_IM}\s+{_ADVERBS}(?P<neg>not\s+(?:(?:really|exactly)\s+)?)?"
    r"(?:a\s+(?:(?:big|huge|great|massive)\s+)?fan\s+of|into|fond\s+of|keen\s+on"
    r"|passionate\s+about|crazy\s+about|obsessed\s+with)\s+(?P<what>.+)$",
    _I,
)


def _opinion(clause: str) -> Statement | None:
    if match := _LIKE.match(clause):
        if match.group("stand"):
            polarity, what = "dislikes", match.group("stood")
        else:
            verb = match.group("verb").lower()
            if verb.startswith("care") and not match.group("neg"):
                return None
            polarity = _LIKE_VERBS.get(verb, "likes")
            if match.group("neg"):
                if polarity == "dislikes":
                    return None
                polarity = "dislikes"
            what = match.group("what")
    elif match := _FAN.match(clause):
        polarity = "dislikes" if match.group("neg") else "likes"
        what = match.group("what")
    else:
        return None
    key = _key(what) if len(_words(what)) <= 10 else None
    return Statement(clause, f"{polarity}:{key}") if key else None


_HAVE = re.compile(
    rf"^I(?:\s+have(?:\s+got)?|'ve(?:\s+got)?|\s+own)\s+(?P<count>{_COUNTS})\s+(?:[a-z]+\s+)?"
    rf"(?:(?P<pets>{'|'.join(_PETS)}|{_PETS_PLURAL})|(?P<children>kids?|children|child|sons?"
    r"|daughters?|boys|girls|grandchildren|grandkids)|(?P<siblings>brothers?|sisters?"
    r"|siblings?))\b(?P<rest>.*)$",
    _I,
)


def _household(clause: str) -> Statement | None:
    match = _HAVE.match(clause)
    if match is None or (match.group("rest") and not _is_plain_value(match.group("rest"), 10)):
        return None
    slot = "pets" if match.group("pets") else "children" if match.group("children") else "siblings"
    return Statement(clause, slot)


def _alternation(words: dict[str, str]) -> str:
    return "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in sorted(words, key=len)[::-1])


_RELATIVE = (
    rf"(?:(?P<mod>{'|'.join(_AGE_MODIFIERS)})\s+)?(?:(?P<step>step|half)[-\s]?)?"
    rf"(?P<rel>{_alternation(_RELATIVES)})(?P<law>[-\s]in[-\s]law)?"
)
_PET = rf"(?P<pet>{_alternation(_PETS)})"
_MY_SUBJECT = re.compile(
    rf"^my\s+(?:{_RELATIVE}|{_PET})(?:\s+{_CAPITALISED_NAME})?(?P<rest>(?:'s\b|\s).*)$", _I
)
_RELATIVE_ONLY = re.compile(rf"{_RELATIVE}|{_PET}", _I)

_SUBJECT_NAME = re.compile(
    rf"^(?:'s\s+(?:first\s+)?name\s+is|'s\s+called|\s+is\s+called|\s+is\s+named|\s+goes\s+by)"
    rf"\s+(?P<name>{_NAME})$",
    _I,
)
_SUBJECT_PLACE = re.compile(
    r"^\s+(?:(?:now|still|currently|also)\s+)?(?:lives?\s+(?:in|near|at|on|outside(?:\s+of)?)"
    r"|(?:is|are)\s+living\s+(?:in|near|at|on)|(?:(?:has|have|just|recently)\s+)?moved"
    r"\s+(?:back\s+)?to|(?:is|are)\s+(?:originally\s+)?from|'s\s+(?:originally\s+)?from"
    r"|comes?\s+from)\s+(?P<place>.+)$",
    _I,
)
_SUBJECT_WORK = re.compile(rf"^\s+(?:works?|is\s+working){_WORKS_AS}", _I)
_SUBJECT_IS_A = re.compile(rf"^(?:\s+is|'s){_IS_A_JOB}", _I)
_SUBJECT_AGE = re.compile(
    rf"^(?:\s+is|'s|\s+just\s+turned|\s+turned)\s+(?:(?P<n>\d{{1,3}})(?:\s+years?\s+old)?"
    rf"|{_NUMBER_WORD}\s+years?\s+old)$",
    _I,
)
_SUBJECT_ATTRIBUTE = re.compile(
    r"^'s\s+(?P<attr>[a-z][a-z\-]*(?:\s+[a-z][a-z\-]*)?)(?:'s|\s+is)\s+(?P<value>.+)$", _I
)


def _relative_slot(match: re.Match[str]) -> str | None:
    if rel := match.group("rel"):
        canonical = _RELATIVES[" ".join(rel.lower().split())]
        if step := match.group("step"):
            canonical = f"{step.lower()}-{canonical}"
        if match.group("law"):
            canonical = f"{canonical}-in-law"
        if mod := match.group("mod"):
            canonical = f"{_AGE_MODIFIERS[mod.lower()]} {canonical}"
        return canonical
    if pet := match.group("pet"):
        if match.group("mod") or match.group("step"):
            return None
        return f"pet:{_PETS[' '.join(pet.lower().split())]}"
    return None


def _good_value(value: str) -> bool:
    words = [word for word in _words(value) if word not in {"a", "an", "the"}]
    if not words or not _is_plain_value(value) or words[0] in _STATES:
        return False
    return not words[0].endswith("ing") or len(words) == 1


def _family(clause: str) -> Statement | None:
    """A relative or a pet: never falls through to the generic rule, so "my sister is
    annoying" is no fact rather than a fact about a "sister" thing."""
    match = _MY_SUBJECT.match(clause)
    if match is None or (base := _relative_slot(match)) is None:
        return None
    rest = match.group("rest")
    is_pet = base.startswith("pet:")
    if found := _SUBJECT_NAME.match(rest):
        if any(word in _NAME_STOPWORDS for word in _words(found.group("name"))):
            return None
        return Statement(_tidy(clause), base if is_pet else f"{base}:name")
    if found := _SUBJECT_AGE.match(rest):
        return Statement(_tidy(clause), f"{base}:age") if _plausible_age(found) else None
    if is_pet:
        return _attribute(clause, rest, base)
    if found := _SUBJECT_PLACE.match(rest):
        return Statement(_tidy(clause), base) if _is_plain_value(found.group("place")) else None
    if (works := _work(rest, _SUBJECT_WORK, _SUBJECT_IS_A)) is not None:
        return Statement(_tidy(clause), f"{base}:job") if works else None
    return _attribute(clause, rest, base)


def _attribute(clause: str, rest: str, base: str) -> Statement | None:
    found = _SUBJECT_ATTRIBUTE.match(rest)
    if found is None:
        return None
    attr = _subject(found.group("attr"))
    value = found.group("value")
    if attr == "birthday":
        ok = _is_date(value)
    else:
        ok = attr not in _GENERIC_SUBJECTS and _good_value(value)
    return Statement(_tidy(clause), f"{base}:{attr}") if ok else None


_MY_X_IS = re.compile(
    r"^my\s+(?P<x>[a-z][a-z\-]*(?:\s+[a-z][a-z\-]*){0,2}?)"
    r"(?:'s\s+(?P<attr>[a-z][a-z\-]*(?:\s+[a-z][a-z\-]*)?)\s+is|\s+is|'s)\s+(?P<value>.+)$",
    _I,
)
# A value led by a preposition is usually where something is for now ("my car is in the
# garage"); a place name keeps it ("my office is in Berlin").
_LOCATED = re.compile(
    r"^(?:in|at|on|under|over|with|by|near|behind|inside|outside|from|for|to|into|around)\b"
    r"(?!\s+(?-i:[A-Z]))",
    _I,
)
_ACTIVITY_SUBJECTS = frozenset({"hobby", "passion", "job"})
_DEDICATED = frozenset({"name", "surname", "birthday"})


def _generic(clause: str) -> Statement | None:
    match = _MY_X_IS.match(clause)
    if match is None:
        return None
    subject = _subject(match.group("x"))
    # Names and birthdays have their own rules; what those turn down is no fact.
    if subject in _GENERIC_SUBJECTS | _DEDICATED or _RELATIVE_ONLY.fullmatch(subject):
        return None
    if any(word in _PRONOUNS or word.startswith("favou") for word in subject.split()):
        return None
    value = match.group("value")
    if _LOCATED.match(value):
        return None
    words = _words(value)
    if subject in _ACTIVITY_SUBJECTS and words and words[0].endswith("ing"):
        good = _is_plain_value(value) and words[0] not in _STATES
    else:
        good = _good_value(value)
    if not good:
        return None
    if attr := match.group("attr"):
        attr = _subject(attr)
        if attr in _GENERIC_SUBJECTS - {"name"}:
            return None
        return Statement(_tidy(clause), f"{subject}:{attr}")
    return Statement(_tidy(clause), subject)


_RULES: tuple[_Rule, ...] = (
    _name,
    _favourite,
    _birth,
    _age,
    _allergy,
    _status,
    _home,
    _opinion,
    _job,
    _household,
    _family,
    _generic,
)


def statement(text: str) -> Statement | None:
    """The fact the user states about themselves in `text`, or None.

    "remember that ..." is the router's business and is no statement here; to slot such a
    fact, pass its payload ("my car is blue")."""
    clause = _clean(text)
    if clause is None or not _gated(clause):
        return None
    for rule in _RULES:
        if found := rule(clause):
            return found
    return None


# --- forgetting --------------------------------------------------------------------------

_POLITE = re.compile(
    r"^(?:(?:please|kindly|can\s+you|could\s+you|would\s+you|will\s+you|I\s+want\s+you\s+to"
    r"|I'd\s+like\s+you\s+to|I\s+need\s+you\s+to|you\s+can|you\s+should|you\s+may|just)"
    r"[\s,]+)+",
    _I,
)
_POLITE_END = re.compile(r",?\s*(?:please|thanks|thank\s+you)$", _I)
_FROM_MEMORY = re.compile(
    r"\s+(?:from|out\s+of)\s+(?:your\s+)?(?:memory|records|database|notes|mind)$", _I
)
_FORGET = re.compile(
    r"^(?:(?P<loose>forget|(?:don't|do\s+not)\s+remember|stop\s+remembering"
    r"|no\s+longer\s+remember|unlearn)"
    r"|(?P<strict>delete|erase|remove|clear|wipe|drop|scrap|discard|purge))\s+(?P<body>.+)$",
    _I,
)
_TOLD_YOU = re.compile(
    r"^(?:(?:everything|anything|all|what(?:ever)?)\s+)?(?:(?:that\s+)?I(?:'ve|\s+have)?\s+"
    r"(?:told|said\s+to|mentioned\s+to|shared\s+with)\s+you|(?:that\s+)?I(?:'ve|\s+have)?\s+"
    r"(?:said|told\s+you|mentioned)|you\s+know|you\s+remember|you\s+learned)"
    r"\s+(?:about|regarding|concerning|on)\s+(?P<topic>.+)$"
    r"|^(?:everything|anything|all)\s+(?:about|regarding)\s+(?P<all>.+)$",
    _I,
)
_THAT_FACT = re.compile(r"^(?:that\s+)?(?P<fact>(?:I|I'm|I've|my)\b.+)$", _I)
_MY_TOPIC = re.compile(r"^(?:about\s+)?my\s+(?P<topic>.+)$", _I)
_ABOUT_TOPIC = re.compile(r"^about\s+(?P<topic>.+)$", _I)
_WH_TOPICS = {
    "where i live": "home",
    "where i'm from": "home",
    "where i am from": "home",
    "where i come from": "home",
    "how old i am": "age",
    "when my birthday is": "birthday",
    "when i was born": "birthday",
    "what i do": "job",
    "what i do for a living": "job",
    "where i work": "job",
    "what i'm allergic to": "allergy",
    "what i am allergic to": "allergy",
    "what i like": "likes",
    "what i love": "likes",
    "what i hate": "dislikes",
    "what i dislike": "dislikes",
    "what my name is": "name",
    "what i'm called": "name",
    "what to call me": "name",
}
_PERSONAL = _wordset(
    """
    name surname age birthday birthyear birthplace home address job diet relationship pets
    children siblings allergy likes dislikes favourite email
    """
) | {"phone number"}
_NOT_TOPICS = _PRONOUNS | _wordset(
    "all me last previous earlier whole conversation chat everything"
)


def _topic_of(slot: str) -> str:
    """A slot as the words a user would use for it: "likes:sailing" -> "sailing"."""
    head, _, tail = slot.partition(":")
    if head in {"likes", "dislikes", "allergy"} and tail:
        return tail
    if head == "pet":
        animal, _, attr = tail.partition(":")
        return f"{animal}'s {attr}" if attr else animal
    if head == "favourite":
        return f"favourite {tail}" if tail else "favourites"
    return f"{head}'s {tail}" if tail else head


def _resolve(topic: str, possessive: bool) -> tuple[str, str | None, bool] | None:
    """(topic, slot prefix, whether the slot is one the scheme names) for a phrase such as
    "sister", "dog's name" or "favourite color"."""
    phrase = " ".join(_FROM_MEMORY.sub("", topic).lower().split())
    words = phrase.split()
    if not words or len(words) > 6 or words[0] in _NOT_TOPICS:
        return None
    subject = _subject(phrase)
    if subject in _PERSONAL:
        return phrase, subject, True
    if words[0].startswith(("favourite", "favorite")):
        rest = _subject(" ".join(words[1:]))
        return phrase, f"favourite:{rest}" if rest else "favourite", True
    if len(words) == 2 and words[1] in {"allergy", "allergies"}:
        return phrase, f"allergy:{words[0]}", True
    owner, apostrophe, attr = phrase.partition("'s ")
    family = _RELATIVE_ONLY.fullmatch(owner if apostrophe else phrase)
    if family and (base := _relative_slot(family)):
        if not apostrophe:
            return phrase, base, True
        attr = _subject(attr)
        if base.startswith("pet:"):
            return phrase, base if attr == "name" else f"{base}:{attr}", True
        return phrase, f"{base}:{attr}", True
    if not possessive:
        return phrase, None, False
    if apostrophe:
        return phrase, f"{_subject(owner)}:{_subject(attr)}", False
    return phrase, subject, False


def forget_request(text: str) -> Forget | None:
    """What the user asks the brain to forget, or None when `text` is no such request.

    "forget it", "forget about it", "never mind" and "forget everything" are not: the first
    three dismiss the conversation, and the last is too sweeping to act on from a rule."""
    stripped = text.strip()
    # "Can you forget my sister?" asks for it; "did you forget my name?" does not.
    question = stripped.endswith("?")
    clause = _clean(stripped.rstrip("?") if question else stripped)
    if clause is None or (question and not _POLITE.match(clause)):
        return None
    clause = _POLITE_END.sub("", _POLITE.sub("", clause))
    match = _FORGET.match(clause)
    if match is None:
        return None
    strict = match.group("strict") is not None
    body = _FROM_MEMORY.sub("", match.group("body"))

    if told := _TOLD_YOU.match(body):
        topic = told.group("topic") or told.group("all")
        mine = _MY_TOPIC.match(topic)
        resolved = _resolve(mine.group("topic"), True) if mine else _resolve(topic, False)
        return Forget(resolved[0], resolved[1]) if resolved else None
    if fact := _THAT_FACT.match(body):
        if found := statement(fact.group("fact")):
            return Forget(_topic_of(found.slot), found.slot)
        if not strict and fact.group(0).lower().startswith("that "):
            return Forget(fact.group("fact").lower(), None)
    if mine := _MY_TOPIC.match(body):
        resolved = _resolve(mine.group("topic"), True)
        if resolved is None or (strict and not resolved[2]):
            return None
        return Forget(resolved[0], resolved[1])
    wh = " ".join(body.lower().removeprefix("about ").split())
    if slot := _WH_TOPICS.get(wh):
        return Forget(_topic_of(slot), slot)
    if not strict and (about := _ABOUT_TOPIC.match(body)):
        resolved = _resolve(about.group("topic"), False)
        return Forget(resolved[0], resolved[1]) if resolved else None
    return None
