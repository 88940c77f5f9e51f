"""Questions that need live data, which an offline assistant cannot have.

A small local model asked for the weather or a share price will happily invent one. These
rules spot such questions first so the brain can say plainly that it is offline instead.

Detection is deliberately conservative in both directions: it needs a question (or a bare
request such as "weather tomorrow") about a live topic, and it steps aside for definitions
("what is weather"), creative requests ("a joke about the weather"), dated questions ("who won
the 1998 world cup") and unit conversions, which the calculator answers.
"""

from __future__ import annotations

import re
from enum import StrEnum


class LiveTopic(StrEnum):
    WEATHER = "weather"
    NEWS = "news"
    PRICES = "prices"  # shares, crypto, prices of things, exchange rates
    SPORTS = "sports"  # scores, results, fixtures
    TRAFFIC = "traffic"  # roads and public transport


_ANSWERS = {
    LiveTopic.WEATHER: (
        "I can't check the weather, because I'm running offline with no live data. "
        "I can still tell you the time, or convert temperatures."
    ),
    LiveTopic.NEWS: (
        "I can't get the news, because I'm running offline with no live data. "
        "I'm happy to chat about something else, though."
    ),
    LiveTopic.PRICES: (
        "I can't look up live prices or exchange rates, because I'm running offline. "
        "If you tell me a rate, I can do the maths."
    ),
    LiveTopic.SPORTS: (
        "I can't check scores or results, because I'm running offline with no live data."
    ),
    LiveTopic.TRAFFIC: (
        "I can't check traffic or travel updates, because I'm running offline with no live "
        "data. I can convert distances and times, though."
    ),
}


def honest_answer(topic: LiveTopic) -> str:
    """What to say instead of guessing: short, spoken, and clear about being offline."""
    return _ANSWERS[topic]


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


# --- guards: things that mention a live topic but do not ask for live data --------------------

# "what is weather", "what are stocks", "define inflation": a definition the model can give.
# A live question almost always has one of the context words, so their absence marks one.
_DEFINITION = re.compile(
    r"^(?:what(?: is|'s| are|s)|define|explain|describe)\s+(?:a |an )?(?P<rest>[a-z' ]+?)"
    r"(?: mean)?$|^what does .+ mean$|\b(?:meaning|definition) of\b"
)
_LIVE_CONTEXT = re.compile(
    r"\b(?:the|today|tonight|tomorrow|now|currently|right|latest|this|at|like|in|doing|worth"
    r"|cost|costs|price|prices|on|for|outside|going|happening|forecast|any)\b"
)
_CREATIVE = re.compile(
    r"\b(?:jokes?|poems?|story|stories|songs?|riddles?|haikus?|limericks?|puns?|rhymes?"
    r"|essays?|facts?|trivia|quiz)\b|^(?:write|draft|compose|make up|invent|imagine|pretend"
    r"|sing)\b"
)
_YEAR = re.compile(r"\b(?:1[5-9]|20)\d{2}\b")  # a dated question is history, not live data
# A number and a temperature scale: "30 degrees celsius in fahrenheit" is for the calculator,
# while "the temperature outside in celsius" still asks for the weather.
_CONVERSION = re.compile(
    r"(?:\d|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen"
    r"|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty"
    r"|seventy|eighty|ninety|hundred)) ?(?:degrees? )?(?:celsius|fahrenheit|kelvin|centigrade)\b"
)

# A request, as opposed to a remark: "is it raining" asks, "it's raining" tells. Remarks start
# with a pronoun or "the X is"; a question mark or a question opener overrides that.
_REQUEST = re.compile(
    r"^(?:i (?:want|need|wonder|would like)|i'd like|i'm wondering|do you know|can you|could you)\b"
)
_REMARK = re.compile(
    r"^(?:i|i'm|im|i've|i'd|my|we|we're|our|you|you're|your|it|it's|its|that|that's|this"
    r"|there's|he|she|they|they're)\b"
    r"|^(?:the )?(?!what|how|who|where|when|why|which|whose)[a-z]+ (?:is|was|has been|looks"
    r"|seems|feels|sounds)\b"
)

# --- topics ----------------------------------------------------------------------------------

_WEATHER = _any(
    r"\bthe weather\b",
    r"\bweather (?:like|today|tonight|tomorrow|now|forecast|report|update|outside|this|next|on"
    r"|in|at|for|going|looking|be|be like)\b",
    r"\b(?:today's|tomorrow's|tonight's|weekend|local) weather\b",
    r"^weather\b",
    r"(?<!sales )(?<!revenue )(?<!budget )(?<!economic )\bforecast\b",
    # "is it going to be sunny", "will it rain", but not "is it true that hot water ...".
    r"\b(?:will|is|was|'s) it (?:(?:be|going|gonna|to|still|currently|getting|supposed|meant"
    r"|likely|expected|really|very|too|so|a|an|bit|little|nice|and|or|day|night) )*(?:rain\w*"
    r"|snow\w*|sunny|sunshine|cloudy|overcast|windy|stormy|thunder\w*|foggy|misty|hot|cold"
    r"|warm|chilly|freezing|frosty|icy|humid|hail\w*|drizzl\w*|pouring|dry|wet)\b",
    r"\b(?:will|is|are) there (?:be |going to be )?(?:any |a |some )?(?:rain|snow|storms?"
    r"|thunder\w*|frost|fog|showers|hail|heatwave|heat wave|wind)\b",
    r"\bchances? of (?:rain|snow|showers|storms?|sun)\b",
    r"\b(?:need|bring|take|pack) (?:an |a |my )?(?:umbrella|brolly|raincoat|rain coat)\b",
    r"\btemperature\b.*\b(?:outside|today|tonight|tomorrow|now|currently|at the moment"
    r"|this (?:morning|afternoon|evening|week|weekend))\b",
    r"\btemperature (?:in|for) (?!(?:celsius|fahrenheit|kelvin|degrees)\b)[a-z]",
    r"\bhow (?:hot|cold|warm|windy|humid|chilly|sunny|rainy|wet) (?:is it|will it be"
    r"|is it going to be|'s it)\b",
    r"\b(?:humidity|uv index|pollen count|air quality)\b",
)

_TRAFFIC = _any(
    r"(?<!network )(?<!web )(?<!website )(?<!internet )(?<!air )(?<!data )\btraffic\b"
    r"(?! ?(?:lights?|signs?|signals?|laws?|rules?|tickets?|cones?|circles?|islands?"
    r"|violations?|wardens?|fines?|school|control|engineer\w*|analysis))",
    r"\b(?:my|the) commute\b",
    r"\broad ?works\b",
    r"\broads? (?:closed|closures?|conditions)\b",
    r"\b(?:delays?|congestion|accidents?|crash(?:es)?|closures?|queues?) on (?:the )?"
    r"(?:m\d+|a\d+|i-?\d+|motorway|highway|freeway|interstate|road|roads|ring road|bridge"
    r"|tunnel|way)\b",
    r"\b(?:is|are) (?:my |the )?(?:next )?(?:train|bus|flight|tube|metro|subway|tram)s? "
    r"(?:on time|delayed|late|running|cancell?ed)\b",
    r"\b(?:train|bus|flight|tube|metro|subway|tram) (?:delays|times|status|departures"
    r"|arrivals|strikes?)\b",
    r"\bhow long (?:will|would) it take (?:me )?to (?:get|drive) (?:to|home)\b",
)

_ASSET = (
    r"(?:stocks?|shares?|stock market|markets?|nasdaq|dow jones|the dow|s ?& ?p|s and p|ftse"
    r"|dax|nikkei|crypto\w*|bitcoins?|btc|ethereum|ether|dogecoin|solana|litecoin|xrp|gold"
    r"|silver|oil|petrol|gasoline|diesel|gas)"
)
_CURRENCY = (
    r"(?:dollars?|euros?|pounds?(?: sterling)?|sterling|yen|yuan|renminbi|rupees?|francs?"
    r"|pesos?|roubles?|rubles?|krona|krone|kronor|rand|lira|dirhams?|usd|eur|gbp|jpy|cny"
    r"|inr|chf|aud|cad)"
)
_PRICES = _any(
    rf"\b{_ASSET}\b.*\b(?:price|prices|priced|pricing|cost|costs|worth|value|valued|trading"
    r"|quote|doing|performing|today|right now)\b",
    rf"\b{_ASSET} at$",
    rf"\b(?:price|prices|value|cost) of (?:a |an |one |the )?(?:[a-z]+ )?{_ASSET}\b",
    r"\b(?:price|prices|cost) of\b",
    r"\bprices?\b(?! (?:elasticity|discrimination|theory|ceiling|floor|war)\b)",
    r"\bhow much (?:does|do|did|would|will|is|are) .+ (?:cost|costs|worth|go for|sell for"
    r"|trade at|trading at|trading for)\b",
    rf"\bhow much (?:is|are|does|do|'s) (?:a |an |one |the )?(?:[a-z]+ )?{_ASSET}\b",
    r"\bwhat (?:does|do|would|will) .+ cost\b",
    r"\b(?:exchange|conversion|currency) rates?\b",
    rf"\b{_CURRENCY}\b.*\b(?:to|in|into|against|versus|vs|for|per)\b.*\b{_CURRENCY}\b",
    rf"\b(?:how strong|how weak) is the {_CURRENCY}\b",
    r"\bhow did the (?:stock )?markets? do\b",
)

_ELECTION = re.compile(
    r"\bwho (?:won|is winning|'s winning|is leading|'s leading) the (?:[a-z]+ )?(?:election"
    r"|vote|referendum|primary|primaries|nobel|oscars?|lottery|polls?)\b"
)

_SPORT = (
    r"(?:game|games|match|matches|race|(?:semi ?)?finals?(?! (?:exams?|year|project|draft))"
    r"|tournament|league|cup|championship|playoffs?|play-offs?|super bowl|world cup"
    r"|world series|grand prix|derby|fixtures?|olympics|grand slam|(?:us|french|australian) open)"
)
_SPORT_NAME = (
    r"(?:football|soccer|basketball|baseball|cricket|rugby|hockey|tennis|golf|formula one|f1"
    r"|nba|nfl|mlb|nhl|premier league|champions league|la liga|bundesliga|serie a)"
)
_WHEN = r"(?:last night|yesterday|today|tonight|this (?:morning|afternoon|evening|weekend|week))"
_SPORTS = _any(
    rf"\bwho (?:won|wins|is winning|'s winning|is leading|'s leading|scored)\b.*\b(?:{_SPORT}"
    rf"|{_WHEN})\b",
    r"\bwhat(?:'s| is| was) the score\b",
    r"\bthe (?:latest|final|live|current|half ?time|full ?time) scores?\b",
    # "scores" or "the score of ...", not "how do you score in rugby" or "a credit score".
    r"\bscores\b(?! (?:on|in) (?:the )?(?:tests?|exams?|sat|iq))",
    r"\bscore (?:of|for|in) the\b",
    r"\bthe (?!credit |test |exam |sat |iq |high |average |best )[a-z]+(?: [a-z]+)? score\b",
    rf"\b(?:{_SPORT}|{_SPORT_NAME}) (?:scores?|results?|standings|table)\b",
    rf"\b{_SPORT_NAME}\b.*\b(?:scores?|results?|standings|table)\b",
    r"\b(?:league table|standings|leaderboard)\b",
    r"\bdid the [a-z0-9' ]{2,30}? (?:win|lose|draw|beat|score)\b",
    rf"\bdid [a-z0-9' ]{{2,30}}? (?:win|lose|draw|beat)\b.*\b{_WHEN}\b",
    rf"\b(?:when|what time)(?: is|'s| does)\b.*\b(?:{_SPORT}|kick ?off)\b",
    r"\bhow did the [a-z]+(?: [a-z]+)? (?:do|play)\b",
)

_NEWS = _any(
    r"\bheadlines?\b",
    r"\b(?:the|any|latest|today's|top|breaking|world|local|national|international|morning"
    r"|evening|current|recent) news\b",
    r"\bnews (?:today|tonight|this|headlines|update|updates|on|about|from|in)\b",
    r"^(?:the )?(?:latest )?news$",
    r"\bin the news\b",
    r"\bcurrent (?:events|affairs)\b",
    r"\bwhat(?:'s| is) (?:happening|going on) in the world\b",
)


def _normalise(text: str) -> str:
    text = text.strip().lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9'&/ ?-]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _is_definition(text: str) -> bool:
    match = _DEFINITION.search(text)
    if match is None:
        return False
    rest = match.group("rest")
    return rest is None or _LIVE_CONTEXT.search(rest) is None


def live_topic(text: str) -> LiveTopic | None:
    """The live-data topic `text` asks about, or None when it needs no live data."""
    normalised = _normalise(text)
    asked = normalised.endswith("?")
    text = normalised.rstrip("? ").strip()
    if not text or len(text) > 300:
        return None
    if _is_definition(text) or _CREATIVE.search(text) or _YEAR.search(text):
        return None
    if _CONVERSION.search(text):
        return None  # "30 degrees celsius in fahrenheit" is arithmetic, not a forecast
    if not (asked or _REQUEST.match(text) or not _REMARK.match(text)):
        return None
    if _WEATHER.search(text):
        return LiveTopic.WEATHER
    if _TRAFFIC.search(text):
        return LiveTopic.TRAFFIC
    if _PRICES.search(text):
        return LiveTopic.PRICES
    if _ELECTION.search(text):
        return LiveTopic.NEWS  # before sports, which would claim "race" and "winning"
    if _SPORTS.search(text):
        return LiveTopic.SPORTS
    if _NEWS.search(text):
        return LiveTopic.NEWS
    return None
