"""Seeded generators of realistic synthetic task data.

Real corpora (SAMSum, CNN/DailyMail, SQuAD, IWSLT) cannot be downloaded in this
environment, so this module produces synthetic data *in the same formats*:

* :func:`gen_dialogsum`   -- SAMSum-like ``{"id", "dialogue", "summary"}``
* :func:`gen_news`        -- CNN/DM-like ``{"id", "article", "highlights"}``
* :func:`gen_squad`       -- SQuAD v1.1 / v2.0 JSON structure
* :func:`gen_translation` -- IWSLT-like ``{"id", "translation": {"de", "en"}}``

Every generator is a pure function of ``(n, seed)`` (it uses its own
``random.Random(seed)``, never the global random state), is prefix stable
(``gen(n, s) == gen(n + k, s)[:n]`` for the list generators) and relies on the
standard library only.

The data is designed to be *learnable*: targets (summaries, highlights,
answers, translations) are consistent functions of the source, with facts
(names, numbers, places, times) copied from it, while the surface of the source
varies (paraphrases, distractor turns/sentences, varying lengths).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = [
    "gen_dialogsum",
    "gen_news",
    "gen_squad",
    "squad_to_records",
    "gen_translation",
    "write_jsonl",
    "write_json",
    "make_all",
    "corpus_text",
]


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def _uid(kind: str, seed: int, i: int, length: int = 24) -> str:
    """Deterministic hex id (independent of any random state)."""
    return hashlib.sha1(f"{kind}:{seed}:{i}".encode()).hexdigest()[:length]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _a(phrase: str) -> str:
    """English indefinite article for ``phrase``."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suf = "th"
    else:
        suf = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def _commas(n: int) -> str:
    return f"{n:,}"


def _wchoice(rng: random.Random, items: Sequence, weights: Sequence[float]):
    return rng.choices(items, weights=weights, k=1)[0]


# ---------------------------------------------------------------------------
# shared pools
# ---------------------------------------------------------------------------

_F_NAMES = (
    "Anna", "Emma", "Olivia", "Sophie", "Mia", "Laura", "Kate", "Julia", "Sarah", "Emily",
    "Hannah", "Lily", "Chloe", "Grace", "Amy", "Lucy", "Ella", "Zoe", "Maria", "Nina",
    "Eva", "Rachel", "Jessica", "Megan", "Monica", "Helen", "Claire", "Alice", "Jane", "Linda",
)
_M_NAMES = (
    "Tom", "Jack", "Harry", "James", "Mark", "Peter", "Paul", "Adam", "Daniel", "Ben",
    "Sam", "Luke", "Max", "Oliver", "Jacob", "Ethan", "Ryan", "Kevin", "Chris", "David",
    "Mike", "Steve", "Tim", "Greg", "Frank", "Eric", "Leo", "Oscar", "Victor", "Simon",
)
_ALL_NAMES = _F_NAMES + _M_NAMES
_GENDER = {**{n: "f" for n in _F_NAMES}, **{n: "m" for n in _M_NAMES}}
_SURNAMES = (
    "Smith", "Brown", "Miller", "Wilson", "Taylor", "Clark", "Lewis", "Walker", "Hall", "Young",
    "King", "Wright", "Green", "Baker", "Adams", "Nelson", "Carter", "Mitchell", "Roberts", "Turner",
    "Parker", "Evans", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "Morgan", "Cooper",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_CITIES = ("Paris", "London", "Berlin", "Rome", "Madrid", "Barcelona", "Lisbon", "Prague", "Vienna",
           "Amsterdam", "Dublin", "New York", "Chicago", "Boston", "Toronto", "Tokyo", "Oslo", "Athens",
           "Warsaw", "Budapest")
_NUM_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
              9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}

_PR = {
    "f": {"he": "she", "him": "her", "his": "her", "He": "She", "His": "Her"},
    "m": {"he": "he", "him": "him", "his": "his", "He": "He", "His": "His"},
    "n": {"he": "it", "him": "it", "his": "its", "He": "It", "His": "Its"},
}


def _fmt_time(h: int, m: int) -> str:
    return f"{h % 12 or 12}{':%02d' % m if m else ''} {'am' if h < 12 else 'pm'}"


def _clock_hm(rng: random.Random, lo: int = 8, hi: int = 21) -> Tuple[int, int]:
    return rng.randint(lo, hi), _wchoice(rng, (0, 30, 15, 45), (6, 3, 1, 1))


def _clock(rng: random.Random, lo: int = 8, hi: int = 21) -> str:
    return _fmt_time(*_clock_hm(rng, lo, hi))


def _date(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}"


def _date_pair(rng: random.Random) -> Tuple[str, str]:
    """Two dates, the second 2-20 days after the first."""
    mi, d = rng.randrange(12), rng.randint(1, 28)
    d2 = d + rng.randint(2, 20)
    mi2 = mi
    if d2 > 28:
        d2 -= 28
        mi2 = (mi + 1) % 12
    return f"{_MONTHS[mi]} {d}", f"{_MONTHS[mi2]} {d2}"


# ===========================================================================
# 1. Dialogue summarisation (SAMSum-like)
# ===========================================================================

class _P:
    """A dialogue participant (or a person mentioned in it)."""

    __slots__ = ("name", "g")

    def __init__(self, name: str):
        self.name = name
        self.g = _GENDER[name]

    def pr(self, key: str) -> str:
        return _PR[self.g][key]


_MEET_ACTS = (
    # activity, place, things someone may bring
    ("see a movie", "the cinema", ("tickets", "popcorn")),
    ("grab a coffee", "the coffee shop", ()),
    ("have lunch", "the food court", ()),
    ("go for a run", "the park", ("water",)),
    ("play tennis", "the sports centre", ("rackets", "balls")),
    ("study for the exam", "the library", ("notes", "laptop")),
    ("have a drink", "the pub", ()),
    ("go shopping", "the mall", ()),
    ("go swimming", "the pool", ("towels",)),
    ("go to the concert", "the concert hall", ("tickets",)),
    ("play board games", "the game cafe", ("cards", "snacks")),
    ("watch the match", "the sports bar", ()),
)
_BUY_ITEMS = (
    ("phone", 150, 900), ("laptop", 400, 1500), ("bike", 100, 800), ("sofa", 200, 1200),
    ("camera", 150, 900), ("TV", 250, 1200), ("guitar", 80, 600), ("jacket", 40, 250),
    ("watch", 50, 400), ("printer", 60, 300), ("desk", 80, 400), ("lamp", 20, 90),
    ("backpack", 30, 120), ("coffee machine", 60, 500), ("vacuum cleaner", 80, 400),
)
_SHOPS = ("IKEA", "Amazon", "the mall", "MediaMarkt", "Walmart", "a second-hand shop", "eBay",
          "Best Buy", "the market", "Target")
_LOST_ITEMS = (("keys", "them"), ("phone", "it"), ("wallet", "it"), ("glasses", "them"),
               ("umbrella", "it"), ("scarf", "it"), ("headphones", "them"), ("ID card", "it"),
               ("laptop charger", "it"), ("notebook", "it"), ("passport", "it"), ("watch", "it"))
_LOST_PLACES = ("the gym", "the office", "the library", "the pub", "the cinema", "the bus",
                "the cafe", "the train", "school", "the swimming pool", "the supermarket")
_FOUND_SPOTS = ("under the sofa", "in my car", "on the kitchen table", "in the living room",
                "next to the door", "in your other jacket", "on the shelf", "in the bathroom")
_VENUES = ("Luigi's", "the Red Lion", "Pizza Palace", "the bowling alley", "the Blue Bar",
           "the beach club", "Taco House")
_GIFTS = ("a new watch", "concert tickets", "a bike", "a spa voucher", "a camera", "a cookbook",
          "a bluetooth speaker", "a board game")
_PARTY_FOOD = ("a cake", "some snacks", "drinks", "a salad", "cupcakes", "pizza", "chips")
_DOCS = ("report", "presentation", "budget", "website", "proposal", "contract", "offer", "analysis")
_CLIENTS = ("Nexon", "Brightway", "Delta Foods", "Apex Bank", "Green Energy", "Orbit Media",
            "Silverline", "Northwind", "Bluewave", "Summit Group", "Vertex", "Polar Tech")
_DOC_PARTS = ("charts", "numbers", "introduction", "design", "translation", "summary", "budget table")
_AIRLINES = ("LH", "BA", "AF", "KL", "FR", "U2", "IB", "LX", "OS", "SK", "AZ", "DL", "UA")
_RESTAURANTS = ("Luigi's", "the Golden Dragon", "Sushi Kyoto", "El Toro", "the Green Garden",
                "Bella Napoli", "the Steak House", "Taj Mahal", "Le Petit Bistro", "the Blue Lagoon")
_DISHES = ("pasta", "ramen", "burgers", "curry", "steak", "sushi", "tiramisu", "pizza")
_REASONS = (
    ("my rent is due and my salary is late", "pay the rent"),
    ("I need to fix my car", "fix {his} car"),
    ("I want to buy the concert tickets before they sell out", "buy concert tickets"),
    ("I have to pay for the driving course", "pay for a driving course"),
    ("my phone broke and I need a new one", "buy a new phone"),
    ("I have to pay the dentist", "pay the dentist"),
)
_SYMPTOMS = (
    ("my back hurts so much", "back pain"),
    ("I've had a cough for {n} days", "a cough"),
    ("my knee still hurts after the run", "knee pain"),
    ("bad headaches again", "headaches"),
    ("my tooth hurts", "toothache"),
    ("I have a rash on my arm", "a rash"),
)
_STREETS = ("Oak Street", "Baker Street", "Park Avenue", "Green Lane", "Hill Road", "Station Road",
            "Main Street", "King Street", "Elm Street", "Church Street", "River Road", "Mill Lane")
_LATE_REASONS = (
    ("the bus is stuck in traffic", "traffic"),
    ("I missed my train", "a missed train"),
    ("my boss kept me at work", "work"),
    ("there was an accident on the highway", "an accident on the highway"),
    ("my car won't start", "car trouble"),
)
_WAIT_PLACES = ("the cafe", "the entrance", "the bar", "the station", "the cinema", "the restaurant")
_PETS = ("cat", "dog", "rabbit", "parrot", "hamster")
_PET_NAMES = ("Luna", "Milo", "Bella", "Coco", "Rocky", "Daisy", "Simba", "Nala")
_KEY_SPOTS = ("with the neighbour", "under the mat", "in the mailbox", "at the reception")

_CHITCHAT = (
    ("how was your weekend?", ("good, thanks!", "too short :(", "relaxing, finally")),
    ("did you watch the game last night?", ("yes, what a match!", "no, I missed it")),
    ("I'm so tired today", ("me too", "same here", "coffee time then")),
    ("have you seen the new season of that show?", ("not yet, no spoilers!", "yes, it's great")),
    ("the weather is terrible today", ("yeah, it's been raining all day", "I know, so cold")),
    ("btw {X} says hi", ("say hi back!", "oh nice, say hi from me")),
    ("<file_photo>", ("haha cute", "lol", "nice!")),
    ("how's the new job going?", ("busy but fine", "I like it so far")),
    ("my cat just knocked over my coffee", ("lol classic", "haha poor you")),
    ("I really need a holiday", ("don't we all", "same")),
    ("did you see what {X} posted?", ("yes lol", "no, what?")),
    ("I just finished that book you gave me", ("and? did you like it?", "finally!")),
)
_SHORT_FILLERS = ("lol", "haha", "ok", "hmm", ":)", "xD", "sure", "cool")
_REACTIONS = ("lol", "good luck!", "oh no", "nice!", "haha", "sounds good", "wow")


def _dl_price(rng: random.Random, v: int) -> str:
    return _wchoice(rng, (f"${v}", f"{v} dollars", f"{v} bucks"), (5, 3, 2))


def _dl_num(rng: random.Random, v: int) -> str:
    if v in _NUM_WORDS and rng.random() < 0.3:
        return _NUM_WORDS[v]
    return str(v)


def _hi(rng: random.Random, other: _P) -> str:
    return _wchoice(rng, ("", f"hi {other.name}! ", "hey, ", "hey! ", f"{other.name}, "), (10, 2, 2, 1, 1))


def _sc_meet(rng, A, B, extra, H):
    act, place, things = rng.choice(_MEET_ACTS)
    day = rng.choice(_DAYS)
    time = _clock(rng)
    hi = _hi(rng, B)
    blocks = []
    b1 = [(A, hi + rng.choice((
        "are we still on for {day}?", "do you want to {act} on {day}?", "wanna {act} on {day}?",
        "any plans for {day}? we could {act}", "are you free on {day}? I'd love to {act}",
    )).format(day=day, act=act))]
    if rng.random() < 0.25:
        day2 = rng.choice([d for d in _DAYS if d != day])
        b1.append((B, rng.choice(("actually {day} is bad for me, what about {day2}?",
                                  "I can't on {day}, can we do {day2}?",
                                  "{day} doesn't work for me. {day2}?")).format(day=day, day2=day2)))
        b1.append((A, rng.choice(("{day2} works too", "ok, {day2} then", "sure, {day2} is fine")).format(day2=day2)))
        day = day2
    else:
        b1.append((B, rng.choice(("sure! what time?", "yes! when and where?", "sounds good, what time works for you?",
                                  "I'm in. what time?"))))
    blocks.append(b1)
    b2 = [(A, rng.choice(("how about {time} at {place}?", "{time} at {place}?", "let's meet at {place} at {time}",
                          "meet me at {place}, {time}?", "{place} at {time} ok?")).format(time=time, place=place))]
    if rng.random() < 0.2:
        time2 = _clock(rng)
        if time2 != time:
            b2.append((B, rng.choice(("could we make it {time2}? I finish work late",
                                      "{time} is too early for me, {time2}?",
                                      "can we do {time2} instead?")).format(time=time, time2=time2)))
            b2.append((A, rng.choice(("sure, {time2} it is", "ok no problem", "fine, {time2}")).format(time2=time2)))
            time = time2
        else:
            b2.append((B, rng.choice(("perfect", "ok, see you there", "great, I'll be there", "deal!"))))
    else:
        b2.append((B, rng.choice(("perfect", "ok, see you there", "great, I'll be there", "deal!",
                                  "works for me"))))
    blocks.append(b2)
    names = [A.name, B.name]
    used = set()
    for C in extra:
        if rng.random() < 0.6:
            blocks.append([(C, rng.choice(("can I join?", "count me in!", "I'm in too!", "mind if I come too?"))),
                           (A, rng.choice(("sure!", "of course", "the more the merrier")))])
            names.append(C.name)
            used.add(C.name)
    bring = None
    if things and rng.random() < 0.6:
        thing = rng.choice(things)
        X = rng.choice((A, B))
        Y = B if X is A else A
        blocks.append([(X, rng.choice(("I'll bring the {t}", "I can bring the {t}", "don't worry, I'll get the {t}",
                                       "I'll take care of the {t}")).format(t=thing)),
                       (Y, rng.choice(("great, thanks!", "cool", "perfect :)", "thanks!")))])
        bring = (X.name, thing)
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    s1 = _wchoice(rng, ("{who} will meet at {place} on {day} at {time}.",
                        "{who} are meeting at {place} on {day} at {time}.",
                        "{who} will {act} at {place} on {day} at {time}."), (5, 2, 3))
    summ = [s1.format(who=who, place=place, day=day, time=time, act=act)]
    if bring:
        summ.append(rng.choice(("{x} will bring the {t}.", "{x} will take care of the {t}.")).format(x=bring[0], t=bring[1]))
    return blocks, summ, used


def _sc_buy(rng, A, B, extra, H):
    item, lo, hi_ = rng.choice(_BUY_ITEMS)
    price = rng.randrange(lo, hi_, 5 if hi_ < 200 else 10)
    blocks = []
    if rng.random() < 0.5:
        shop = rng.choice(_SHOPS)
        blocks.append([
            (A, _hi(rng, B) + rng.choice(("look what I bought! <file_photo>", "I finally bought a new {item}!",
                                          "guess what, I got a new {item}")).format(item=item)),
            (B, rng.choice(("wow, nice! how much was it?", "cool! how much did you pay?",
                            "looks great! was it expensive?"))),
            (A, rng.choice(("{p} at {shop}", "only {p}, I got it at {shop}", "{p}, there was a sale at {shop}")
                           ).format(p=_dl_price(rng, price), shop=shop)),
        ])
        if rng.random() < 0.5:
            blocks[-1].append((B, rng.choice(("that's a good deal", "not bad at all", "wow, cheap!"))))
        s1 = rng.choice(("{A} bought a new {item} at {shop} for ${p}.", "{A} got a new {item} for ${p} at {shop}.",
                         "{A} paid ${p} for a new {item} at {shop}."))
        summ = [s1.format(A=A.name, item=item, shop=shop, p=price)]
        k = rng.random()
        if k < 0.35:
            blocks.append([(B, rng.choice(("I think I'll buy one too", "I want one too!", "I'm gonna get one too")))])
            summ.append(f"{B.name} wants to buy one too.")
        elif k < 0.7:
            blocks.append([(B, rng.choice(("I'll go to {shop} tomorrow and have a look",
                                           "I'll check {shop} tomorrow")).format(shop=shop))])
            summ.append(f"{B.name} will check {shop} tomorrow.")
        return blocks, summ, set()
    # selling / negotiating
    p1 = price
    p2 = max(5, int(p1 * rng.choice((0.6, 0.7, 0.75, 0.8))) // 5 * 5)
    p3 = (p1 + p2) // 2 // 5 * 5
    day = rng.choice(_DAYS)
    b = [
        (B, _hi(rng, A) + rng.choice(("are you still selling your {item}?", "is the {item} still available?",
                                      "I saw your ad, is the {item} still for sale?")).format(item=item)),
        (A, rng.choice(("yes! {p}", "yes, I want {p} for it", "it is, {p}")).format(p=_dl_price(rng, p1))),
        (B, rng.choice(("would you take {p}?", "can you do {p}?", "how about {p}?")).format(p=_dl_price(rng, p2))),
    ]
    if rng.random() < 0.5:
        b.append((A, rng.choice(("ok, {p} is fine", "fine, {p} it is", "ok, {p}, deal")).format(p=_dl_price(rng, p2))))
        final = p2
    else:
        b.append((A, rng.choice(("I can do {p}, not less", "{p} is my final price", "{p} and it's yours")
                                ).format(p=_dl_price(rng, p3))))
        b.append((B, rng.choice(("ok, deal", "fine, {p} then", "ok, I'll take it")).format(p=_dl_price(rng, p3))))
        final = p3
    blocks.append(b)
    blocks.append([(B, rng.choice(("can I pick it up on {day}?", "I can come get it on {day} after work",
                                   "is {day} ok for pick up?")).format(day=day)),
                   (A, rng.choice(("sure", "yes, {day} is fine", "ok, see you on {day}")).format(day=day))])
    s1 = rng.choice(("{A} is selling {his} {item} to {B} for ${p}.", "{B} will buy {A}'s {item} for ${p}."))
    summ = [s1.format(A=A.name, B=B.name, his=A.pr("his"), item=item, p=final),
            f"{B.name} will pick it up on {day}."]
    return blocks, summ, set()


def _sc_lost(rng, A, B, extra, H):
    item, it = rng.choice(_LOST_ITEMS)
    place = rng.choice(_LOST_PLACES)
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("I can't find my {item} anywhere", "have you seen my {item}?",
                                      "I think I lost my {item}", "my {item} is gone :(")).format(item=item)),
        (B, rng.choice(("oh no! where did you last have {it}?", "when did you last see {it}?",
                        "did you check your bag?")).format(it=it)),
        (A, rng.choice(("I had {it} at {place} this morning", "I think I left {it} at {place}",
                        "last time I saw {it} was at {place}")).format(it=it, place=place)),
    ]]
    s1 = rng.choice(("{A} lost {his} {item} at {place}.", "{A} can't find {his} {item}, probably left at {place}.",
                     "{A} has lost {his} {item}, probably at {place}."))
    summ = [s1.format(A=A.name, his=A.pr("his"), item=item, place=place)]
    r = rng.random()
    if r < 0.35:
        spot = rng.choice(_FOUND_SPOTS)
        blocks.append([(B, rng.choice(("wait, I think I saw {it} {spot}", "I just found {it} {spot}!",
                                       "are these yours? {spot} <file_photo>")).format(it=it, spot=spot)),
                       (A, rng.choice(("yes!! thank you", "omg thanks", "that's it!")))])
        summ.append(f"{B.name} found {it} {spot}.")
    elif r < 0.65:
        blocks.append([(B, rng.choice(("call {place}, maybe someone found {it}", "you should call {place}")
                                      ).format(place=place, it=it)),
                       (A, rng.choice(("good idea, I'll call them now", "ok, I'll call them")))])
        summ.append(f"{A.name} will call {place}.")
    else:
        when = rng.choice(("tomorrow morning", "after work", "tonight", "on " + rng.choice(_DAYS)))
        blocks.append([(A, rng.choice(("I'll go back to {place} {when}", "I'll check {place} again {when}")
                                      ).format(place=place, when=when)),
                       (B, rng.choice(("good luck", "fingers crossed", "hope you find {it}")).format(it=it))])
        summ.append(f"{A.name} will go back to {place} {when} to look for {it}.")
    return blocks, summ, set()


def _sc_party(rng, A, B, extra, H):
    day = rng.choice(_DAYS)
    time = _clock(rng, 12, 21)
    venue = rng.choice(_VENUES + (f"{A.name}'s place",))
    surprise = rng.random() < 0.5
    if surprise:
        first = rng.choice(("we're throwing a surprise party for {H} on {day}!",
                            "I'm organising a surprise party for {H}, it's on {day}"))
    else:
        first = rng.choice(("{H}'s birthday party is on {day}!", "don't forget {H}'s birthday party on {day}"))
    blocks = [[
        (A, _hi(rng, B) + first.format(H=H.name, day=day)),
        (B, rng.choice(("where is it?", "cool, where?", "what time and where?"))),
        (A, rng.choice(("at {venue} at {time}", "{venue}, {time}", "{time} at {venue}. don't be late!")
                       ).format(venue=venue, time=time)),
    ]]
    if surprise:
        s1 = rng.choice(("{A} is organising a surprise party for {H} at {venue} on {day} at {time}.",
                         "There will be a surprise party for {H} at {venue} on {day} at {time}."))
    else:
        s1 = rng.choice(("{H}'s birthday party is at {venue} on {day} at {time}.",
                         "{A} reminds {B} about {H}'s birthday party at {venue} on {day} at {time}."))
    summ = [s1.format(A=A.name, B=B.name, H=H.name, venue=venue, day=day, time=time)]
    g = rng.random()
    if g < 0.4:
        amt = rng.choice((10, 15, 20, 25, 30, 40, 50))
        gift = rng.choice(_GIFTS)
        blocks.append([(A, rng.choice(("we're all chipping in {a} for {gift}", "everyone gives {a}, we're buying {gift}")
                                      ).format(a=_dl_price(rng, amt), gift=gift)),
                       (B, rng.choice(("sure, I'll send you the money", "ok, count me in", "great idea")))])
        summ.append(f"Everyone is chipping in ${amt} for {gift}.")
    elif g < 0.8:
        food = rng.choice(_PARTY_FOOD)
        blocks.append([(B, rng.choice(("should I bring something?", "what can I bring?"))),
                       (A, rng.choice(("could you bring {f}?", "maybe {f}?", "{f} would be great")).format(f=food)),
                       (B, rng.choice(("sure, no problem", "ok!", "will do")))])
        summ.append(f"{B.name} will bring {food}.")
    return blocks, summ, set()


def _sc_work(rng, A, B, extra, H):
    doc = rng.choice(_DOCS)
    client = rng.choice(_CLIENTS)
    di = rng.randrange(0, 5)
    day = _DAYS[di]
    day2 = _DAYS[rng.randint(max(0, di - 2), di)]
    time = _clock(rng)
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("did you finish the {doc} for {c}?", "how's the {doc} for {c} going?",
                                      "any news on the {doc} for {c}?")).format(doc=doc, c=client)),
        (B, rng.choice(("almost done", "not yet, sorry", "I'm still working on it"))),
        (A, rng.choice(("they need it by {day}", "the deadline is {day}", "{c} wants it on {day}")
                       ).format(day=day, c=client)),
        (B, rng.choice(("I'll send it to you by {time} on {day2}", "you'll have it by {time} on {day2}",
                        "ok, I'll send it on {day2} by {time}")).format(time=time, day2=day2)),
    ]]
    s1 = rng.choice(("{B} will send the {doc} for {c} to {A} by {time} on {day2}.",
                     "{B} is still working on the {doc} for {c} and will send it to {A} by {time} on {day2}."))
    summ = [s1.format(A=A.name, B=B.name, doc=doc, c=client, time=time, day2=day2)]
    if rng.random() < 0.4:
        part = rng.choice(_DOC_PARTS)
        blocks.append([(B, rng.choice(("could {H} help me with the {part}?", "I need help with the {part}, is {H} free?")
                                      ).format(H=H.name, part=part)),
                       (A, rng.choice(("sure, I'll ask {H}", "ok, I'll talk to {H}")).format(H=H.name))])
        summ.append(f"{A.name} will ask {H.name} to help with the {part}.")
    else:
        blocks[-1].append((A, rng.choice(("ok thanks", "great", "perfect, thanks"))))
    return blocks, summ, set()


def _sc_travel(rng, A, B, extra, H):
    city = rng.choice(_CITIES)
    date, date2 = _date_pair(rng)
    flight = f"{rng.choice(_AIRLINES)}{rng.randint(100, 2999)}"
    fh, fm = _clock_hm(rng, 9, 22)
    time = _fmt_time(fh, fm)
    him = A.pr("him")
    if rng.random() < 0.5:
        blocks = [[
            (A, _hi(rng, B) + rng.choice(("I'm coming to {city} on {date}!", "guess what, I booked my flight to {city}! {date}",
                                          "I'll be in {city} on {date}")).format(city=city, date=date)),
            (B, rng.choice(("yay! what time do you land?", "great! which flight?", "finally! send me your flight details"))),
            (A, rng.choice(("flight {f}, landing at {t}", "it's {f}, arrives at {t}", "{f}, I land at {t}")
                           ).format(f=flight, t=time)),
            (B, rng.choice(("I'll pick you up at the airport", "I'll be waiting at the airport", "I'll come get you at the airport"))),
        ]]
        s1 = rng.choice(("{A} is flying to {city} on {date} on flight {f}. {B} will pick {him} up at the airport at {t}.",
                         "{A} arrives in {city} on {date} at {t} on flight {f}. {B} will pick {him} up at the airport."))
        summ = [s1.format(A=A.name, B=B.name, city=city, date=date, f=flight, t=time, him=him)]
        return blocks, summ, set()
    time2 = _fmt_time(fh - rng.choice((2, 3)), rng.choice((0, 0, 30)))
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("I'm flying to {city} on {date}", "my flight to {city} is on {date}")
                                     ).format(city=city, date=date)),
        (B, rng.choice(("nice! for how long?", "lucky you! how long?", "cool, when are you back?"))),
        (A, rng.choice(("I'm back on {d2}", "I'll be back on {d2}", "until {d2}")).format(d2=date2)),
        (B, rng.choice(("do you need a ride to the airport?", "want me to drive you to the airport?"))),
        (A, rng.choice(("that would be great, my flight is at {t}", "yes please! the flight is at {t}")).format(t=time)),
        (B, rng.choice(("ok, I'll pick you up at {t2}", "I'll be at your place at {t2}")).format(t2=time2)),
    ]]
    summ = [f"{A.name} is flying to {city} on {date} and will be back on {date2}.",
            f"{B.name} will drive {him} to the airport at {time2}."]
    return blocks, summ, set()


def _sc_restaurant(rng, A, B, extra, H):
    rest = rng.choice(_RESTAURANTS)
    day = rng.choice(_DAYS)
    time = _clock(rng, 12, 21)
    n = rng.randint(2, 9)
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("I booked a table at {r} for {day} at {t}", "{r} is booked for {day}, {t}",
                                      "I reserved a table at {r}, {day} {t}")).format(r=rest, day=day, t=time)),
        (B, rng.choice(("how many people?", "for how many?", "great! for how many people?"))),
        (A, rng.choice(("{n} people", "for {n}", "we're {n}")).format(n=_dl_num(rng, n))),
    ]]
    if rng.random() < 0.4:
        blocks.append([(B, rng.choice(("yum, their {d} is the best", "I love their {d}")).format(d=rng.choice(_DISHES)))])
    s1 = rng.choice(("{A} booked a table for {n} at {r} on {day} at {t}.",
                     "{A} has reserved a table at {r} for {n} people on {day} at {t}."))
    summ = [s1.format(A=A.name, n=n, r=rest, day=day, t=time)]
    if rng.random() < 0.35 and n < 12:
        n1 = n + 1
        blocks.append([(B, rng.choice(("can {H} come too?", "{H} wants to join, is that ok?")).format(H=H.name)),
                       (A, rng.choice(("sure, I'll change the booking to {n1}", "ok, I'll call them and make it {n1}")
                                      ).format(n1=_dl_num(rng, n1)))])
        summ.append(f"{H.name} will join them, so {A.name} will change the booking to {n1} people.")
    return blocks, summ, set()


def _sc_money(rng, A, B, extra, H):
    amt = rng.choice((50, 100, 150, 200, 250, 300, 400, 500, 600, 800))
    reason_d, reason_s = rng.choice(_REASONS)
    reason_s = reason_s.format(his=A.pr("his"))
    day = rng.choice(_DAYS)
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("can you lend me {a}?", "could I borrow {a}?", "I need a favour... could you lend me {a}?")
                                     ).format(a=_dl_price(rng, amt))),
        (B, rng.choice(("what for?", "sure, but what happened?", "hmm, what do you need it for?"))),
        (A, reason_d),
    ]]
    him = A.pr("him")
    r = rng.random()
    if r < 0.45:
        blocks.append([(B, rng.choice(("ok, I'll transfer it tonight", "no problem, I'll send it now", "sure, no problem")))])
        summ = [f"{A.name} needs ${amt} to {reason_s}.", f"{B.name} will lend {him} the money and {A.name} will pay it back on {day}."]
    elif r < 0.75:
        amt2 = amt // 2 // 10 * 10 or 20
        blocks.append([(B, rng.choice(("I can only give you {a}", "I don't have that much, {a} is all I can do")
                                      ).format(a=_dl_price(rng, amt2))),
                       (A, rng.choice(("that helps, thanks", "ok, thank you")))])
        summ = [f"{A.name} needs ${amt} to {reason_s}.", f"{B.name} can only lend {him} ${amt2}, which {A.name} will pay back on {day}."]
    else:
        blocks.append([(B, rng.choice(("sorry, I'm broke this month", "sorry, I can't, I'm saving for my trip"))),
                       (A, rng.choice(("no worries, I'll ask {H}", "ok, I'll ask {H} then")).format(H=H.name))])
        summ = [f"{A.name} needs ${amt} to {reason_s}, but {B.name} can't lend {him} any money.",
                f"{A.name} will ask {H.name}."]
        return blocks, summ, set()
    blocks[-1].extend([(A, rng.choice(("I'll pay you back on {day}", "you'll get it back on {day}, promise",
                                       "I'll give it back on {day}")).format(day=day)),
                       (B, rng.choice(("no rush", "ok", "sure")))])
    return blocks, summ, set()


def _sc_doctor(rng, A, B, extra, H):
    doc = rng.choice(_SURNAMES)
    day = rng.choice(_DAYS[:6])
    time = _clock(rng, 8, 18)
    sym_d, sym_s = rng.choice(_SYMPTOMS)
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("I have an appointment with Dr. {doc} on {day} at {t}",
                                      "I finally booked Dr. {doc}, {day} at {t}",
                                      "I'm seeing Dr. {doc} on {day} at {t}")).format(doc=doc, day=day, t=time)),
        (B, rng.choice(("what's wrong?", "is everything ok?", "oh no, are you sick?"))),
        (A, sym_d.format(n=rng.randint(3, 12))),
    ]]
    s1 = rng.choice(("{A} has an appointment with Dr. {doc} on {day} at {t} because of {s}.",
                     "{A} is seeing Dr. {doc} about {s} on {day} at {t}."))
    summ = [s1.format(A=A.name, doc=doc, day=day, t=time, s=sym_s)]
    him = A.pr("him")
    r = rng.random()
    if r < 0.5:
        blocks.append([(B, rng.choice(("do you want me to drive you?", "I can take you there if you want",
                                       "should I drive you there?"))),
                       (A, rng.choice(("yes please, that would be great", "that would be nice, thanks")))])
        summ.append(f"{B.name} will drive {him} there.")
    elif r < 0.75:
        blocks.append([(B, rng.choice(("do you want me to drive you?", "I can take you there if you want"))),
                       (A, rng.choice(("no thanks, I'll take the bus", "it's ok, I'll take the bus")))])
        summ.append(f"{A.name} will take the bus there.")
    else:
        blocks.append([(B, rng.choice(("get well soon!", "hope it's nothing serious", "take care")))])
    return blocks, summ, set()


def _sc_moving(rng, A, B, extra, H):
    date = _date(rng)
    street = rng.choice(_STREETS)
    home = rng.choice(("flat", "house"))
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("we're moving on {d}!", "the move is on {d}", "we finally signed the contract, moving on {d}")
                                     ).format(d=date)),
        (B, rng.choice(("finally! where to?", "congrats! where's the new place?", "nice, where?"))),
        (A, rng.choice(("a {home} on {st}", "a small {home} on {st}", "it's a {home} on {st}")).format(home=home, st=street)),
        (A, rng.choice(("could you help us with the boxes?", "we need help carrying stuff, are you free?",
                        "any chance you could help?"))),
    ]]
    helpers = [B.name]
    r = rng.random()
    time = _clock(rng)
    veh = rng.choice(("car", "van"))
    if r < 0.5:
        blocks[-1].append((B, rng.choice(("sure, I can bring my {v}", "of course, I'll bring my {v}")).format(v=veh)))
        extra_s = f" with {B.pr('his')} {veh}"
    else:
        blocks[-1].append((B, rng.choice(("of course! I'll be there at {t}", "yes, I can come at {t}")).format(t=time)))
        extra_s = f" at {time}"
    used = set()
    for C in extra:
        if rng.random() < 0.6:
            blocks.append([(C, rng.choice(("I can help too!", "count me in", "I'll come too")))])
            helpers.append(C.name)
            used.add(C.name)
    summ = [rng.choice(("{A} is moving to a new {home} on {st} on {d}.", "{A} will move to a {home} on {st} on {d}.")
                       ).format(A=A.name, home=home, st=street, d=date)]
    if len(helpers) == 1:
        summ.append(f"{B.name} will help{extra_s}.")
    else:
        who = ", ".join(helpers[:-1]) + " and " + helpers[-1]
        summ.append(f"{who} will help.")
    return blocks, summ, used


def _sc_late(rng, A, B, extra, H):
    n = rng.choice((5, 10, 15, 20, 25, 30, 40))
    reason_d, reason_s = rng.choice(_LATE_REASONS)
    place = rng.choice(_WAIT_PLACES)
    him = A.pr("him")
    blocks = [[
        (A, rng.choice(("I'm running {n} minutes late, sorry", "sorry, I'll be {n} minutes late", "{n} more minutes, sorry!!",
                        "I'll be like {n} minutes late")).format(n=n)),
        (B, rng.choice(("what happened?", "no problem, what's going on?", "again? what happened?"))),
        (A, reason_d),
    ]]
    v = rng.randrange(3)
    blocks[-1].append((B, (("ok, I'll wait at {p}", "no problem, I'll wait for you at {p}"),
                           ("no worries, I'll order for you at {p}", "ok, I'll order for you, I'm at {p}"),
                           ("I'm at {p}, take your time", "ok, I'm already at {p}"))[v][rng.randrange(2)].format(p=place)))
    s1 = rng.choice(("{A} will be {n} minutes late because of {r}.", "{A} is running {n} minutes late because of {r}."))
    s2 = ("{B} will wait for {him} at {p}.", "{B} will order for {him} at {p}.", "{B} is already at {p}.")[v]
    summ = [s1.format(A=A.name, n=n, r=reason_s), s2.format(B=B.name, him=him, p=place)]
    return blocks, summ, set()


def _sc_pet(rng, A, B, extra, H):
    pet = rng.choice(_PETS)
    pname = rng.choice(_PET_NAMES)
    city = rng.choice(_CITIES)
    i = rng.randrange(0, 5)
    d1, d2 = _DAYS[i], _DAYS[rng.randint(i + 1, 6)]
    spot = rng.choice(_KEY_SPOTS)
    blocks = [[
        (A, _hi(rng, B) + rng.choice(("could you feed my {pet} {pn} while I'm away?", "I need a favour, can you look after my {pet} {pn} next week?",
                                      "would you take care of my {pet} {pn} for a few days?")).format(pet=pet, pn=pname)),
        (B, rng.choice(("sure, when are you leaving?", "of course! for how long?", "no problem, when?"))),
        (A, rng.choice(("I'm in {c} from {d1} to {d2}", "I'll be in {c} from {d1} until {d2}",
                        "from {d1} to {d2}, I'm going to {c}")).format(c=city, d1=d1, d2=d2)),
        (A, rng.choice(("the keys are {s}", "I'll leave the keys {s}")).format(s=spot)),
        (B, rng.choice(("ok no problem", "got it", "perfect"))),
    ]]
    s1 = rng.choice(("{B} will look after {A}'s {pet} {pn} from {d1} to {d2} while {A} is in {c}.",
                     "{A} is going to {c} from {d1} to {d2} and {B} will feed {his} {pet} {pn}."))
    summ = [s1.format(A=A.name, B=B.name, pet=pet, pn=pname, d1=d1, d2=d2, c=city, his=A.pr("his")),
            f"The keys are {spot}."]
    return blocks, summ, set()


_SCENARIOS = (_sc_meet, _sc_buy, _sc_lost, _sc_party, _sc_work, _sc_travel, _sc_restaurant,
              _sc_money, _sc_doctor, _sc_moving, _sc_late, _sc_pet)


def _casual(rng: random.Random, s: str) -> str:
    r = rng.random()
    if r < 0.3:
        s = s[:1].lower() + s[1:]
    else:
        s = _cap(s)
    r = rng.random()
    if s and s[-1].isalnum() and r < 0.35:
        s += rng.choice((".", "!", "!", " :)"))
    return s


def _one_dialogue(rng: random.Random) -> Tuple[str, str]:
    n_spk = _wchoice(rng, (2, 3, 4), (70, 22, 8))
    names = rng.sample(_ALL_NAMES, n_spk + 2)
    spk = [_P(x) for x in names[:n_spk]]
    H = _P(names[n_spk])       # a third person mentioned in the dialogue
    X = names[n_spk + 1]       # a name used in distractor chit-chat only
    A, B = spk[0], spk[1]
    extra = spk[2:]
    sc = rng.choice(_SCENARIOS)
    blocks, summ, used = sc(rng, A, B, extra, H)
    # distractor chit-chat, inserted at block boundaries
    n_core = sum(len(b) for b in blocks)
    must = []
    for C in extra:
        # extra speakers that did not take part in the scenario must say something
        if C.name not in used:
            must.append([(C, rng.choice(_REACTIONS))])
    budget = 14 - n_core - len(must)
    chat = rng.sample(_CHITCHAT, 3)
    opt = []
    for k in range(_wchoice(rng, (0, 1, 2, 3), (35, 35, 20, 10))):
        if rng.random() < 0.8:
            q, answers = chat[k]
            s1, s2 = rng.sample(spk, 2)
            opt.append([(s1, q.format(X=X)), (s2, rng.choice(answers))])
        else:
            opt.append([(rng.choice(spk), rng.choice(_SHORT_FILLERS))])
    while opt and sum(len(d) for d in opt) > budget:
        opt.pop()
    dist = must + opt
    rng.shuffle(dist)
    for d in dist:
        # single-turn fillers and turns by extra speakers never open the dialogue
        lo = 1 if (len(d) == 1 or any(t[0] in extra for t in d)) else 0
        blocks.insert(rng.randint(lo, len(blocks)), d)
    turns = [t for b in blocks for t in b]
    if len(turns) < 14 and rng.random() < 0.35:
        who = rng.choice((A, B))
        turns.append((who, rng.choice(("see you!", "bye!", "ok, thanks!", "great, talk later", "thanks a lot!", "<3"))))
    while len(turns) < 3:
        turns.append((B, rng.choice(("ok", "great, thanks!", "see you"))))
    dialogue = "\n".join(f"{p.name}: {_casual(rng, text)}" for p, text in turns)
    return dialogue, " ".join(summ)


def gen_dialogsum(n: int, seed: int) -> List[dict]:
    """SAMSum-like dialogue summarisation records ``{"id", "dialogue", "summary"}``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        d, s = _one_dialogue(rng)
        out.append({"id": _uid("dialogsum", seed, i, 16), "dialogue": d, "summary": s})
    return out


# ===========================================================================
# 2. News summarisation (CNN/DM-like)
# ===========================================================================

_COMPANIES = ("Norvik Motors", "Bluestone Bank", "Pellar Foods", "Arcadia Airlines", "Helix Pharma",
              "Quanta Systems", "Riverton Steel", "Solara Energy", "Vantage Retail", "Kestrel Telecom",
              "Marlow Media", "Oakridge Insurance", "Zenith Electronics", "Harbor Shipping", "Crestline Foods")
_TEAMS = ("Ashford United", "Riverside City", "Northbridge Rovers", "Kingsport Athletic", "Westfield Wanderers",
          "Port Albany", "Eastham Town", "Millbrook Rangers", "Southgate Albion", "Highbury Villa",
          "Lakeside FC", "Stoneford County")
_STADIUMS = ("Victoria Park", "the Riverside Stadium", "Kingsway Arena", "Holloway Road", "the Millennium Ground",
             "Elmwood Park", "the Harbour Stadium")
_NEWS_CITIES = ("Leeds", "Bristol", "Denver", "Atlanta", "Phoenix", "Glasgow", "Manchester", "Portland", "Dallas",
                "Cardiff", "Seattle", "Boston", "Houston", "Liverpool", "Birmingham", "Sheffield", "Nashville",
                "Oakland", "Newcastle", "Detroit")
_REGIONS = ("the north-east of England", "southern Scotland", "the Gulf Coast", "northern California", "Wales",
            "the Midwest", "Florida", "the south coast", "Northern Ireland", "the Pacific Northwest")
_STORMS = ("Agnes", "Brian", "Caroline", "Dylan", "Eleanor", "Fionn", "Georgina", "Hector", "Imogen", "Jorge",
           "Katie", "Leon", "Miriam", "Norbert")
_ROADS = ("the M6", "Interstate 95", "the A1", "Highway 101", "the M25", "Interstate 80", "the A46")
_JOBS = ("teacher", "lawyer", "police officer", "businessman", "nurse", "journalist", "engineer", "doctor")
_NEWS_SHOPS = ("jewellery store", "bank", "petrol station", "supermarket", "phone shop", "pharmacy")
_JOURNALS = ("the Journal of Public Health", "Nature Medicine", "the British Medical Journal", "Science Today")
_HABITS = (("walk for 30 minutes a day", "develop heart disease"), ("eat fish twice a week", "suffer from depression"),
           ("sleep at least seven hours a night", "catch a cold"), ("drink green tea", "develop diabetes"),
           ("read every day", "lose their memory"), ("own a dog", "feel lonely"))
_BUILDINGS = ("warehouse", "school", "church", "block of flats", "factory", "hotel", "restaurant")


def _full(rng: random.Random) -> str:
    return f"{rng.choice(_ALL_NAMES)} {rng.choice(_SURNAMES)}"


def _money(rng: random.Random) -> str:
    if rng.random() < 0.35:
        return f"${rng.randint(1, 9)}.{rng.randint(1, 9)} billion"
    return f"${rng.randrange(20, 990, 10)} million"


def _news_company(rng):
    co = rng.choice(_COMPANIES)
    up = rng.random() < 0.6
    p = rng.randint(2, 45)
    x = _money(rng)
    q = rng.choice(("first", "second", "third", "fourth"))
    ceo = _full(rng)
    day = rng.choice(_DAYS)
    n = rng.choice((5, 10, 12, 15, 20, 25, 30, 40, 50, 100, 200))
    region = rng.choice(("Europe", "Asia", "the United States", "Canada", "Latin America", "Africa"))
    plan = rng.choice((f"open {n} new stores in {region}", f"cut {n * 10} jobs", f"hire {n * 10} workers in {region}"))
    sp = f"{rng.randint(5, 150)}.{rng.randint(10, 99)}"
    sq = rng.randint(1, 12)
    lead = (f"{co} said on {day} that its net profit for the {q} quarter {'rose' if up else 'fell'} {p} percent "
            f"to {x}, {'beating' if up else 'missing'} analysts' expectations.")
    facts = [
        (f"Shares in the company {'rose' if up else 'fell'} {sq} percent to ${sp} in early trading.",
         f"Shares {'rise' if up else 'fall'} {sq} percent."),
        (f"The company also announced plans to {plan} over the next {rng.randint(2, 5)} years.",
         f"{co} plans to {plan}."),
    ]
    quotes = [rng.choice((
        f'"We are very pleased with our performance this quarter," chief executive {ceo} said in a statement.',
        f'"This has been a difficult year for the whole industry," said chief executive {ceo}.',
        f'"Our customers continue to trust our products," {ceo}, the chief executive, told reporters.',
    ))]
    bg = [f"{co}, which was founded in {rng.randint(1890, 2005)}, employs about {_commas(rng.randrange(2000, 90000, 500))} people.",
          f"The company is based in {rng.choice(_NEWS_CITIES)}.",
          f"Analysts had expected a profit of about {_money(rng)}.",
          "The results come at a difficult time for the sector.",
          f"Rival firms reported mixed results earlier this month."]
    hl0 = f"{co}'s {q}-quarter profit {'rises' if up else 'falls'} {p} percent to {x}."
    return lead, hl0, facts, quotes, bg


def _news_sport(rng):
    a, b = rng.sample(_TEAMS, 2)
    st = rng.choice(_STADIUMS)
    day = rng.choice(_DAYS)
    player = _full(rng)
    coach = _full(rng)
    m1 = rng.randint(3, 60)
    m2 = rng.randint(m1 + 2, 90)
    pos = rng.randint(2, 12)
    if rng.random() < 0.8:
        s2 = rng.randint(0, 2)
        s1 = rng.randint(s2 + 1, s2 + 3)
        lead = f"{a} beat {b} {s1}-{s2} at {st} on {day} to move up to {_ordinal(pos)} place in the table."
        hl0 = f"{a} beat {b} {s1}-{s2} at {st}."
    else:
        s1 = rng.randint(0, 3)
        lead = f"{a} and {b} drew {s1}-{s1} at {st} on {day} in a match full of chances."
        hl0 = f"{a} and {b} draw {s1}-{s1} at {st}."
    if s1 >= 2:
        f1 = (f"{player} scored twice for {a}, in the {_ordinal(m1)} and {_ordinal(m2)} minutes.",
              f"{player} scores twice for {a}.")
    elif s1 == 1:
        f1 = (f"{player} scored the goal for {a} in the {_ordinal(m1)} minute.",
              f"{player} scores in the {_ordinal(m1)} minute.")
    else:
        f1 = (f"{a} goalkeeper {player} made {rng.randint(4, 9)} saves.",
              f"{player} keeps a clean sheet for {a}.")
    att = _commas(rng.randrange(8000, 60000, 100))
    facts = [f1, (f"A crowd of {att} watched the match.", f"Crowd of {att} at {st}.")]
    quotes = [f'"{rng.choice(("I am proud of the players", "We deserved more today", "It was a hard game but we kept going"))},"'
              f" said {a} coach {coach}."]
    bg = [f"{b} have now lost {rng.randint(2, 6)} of their last {rng.randint(7, 10)} games.",
          f"{a} last won the title in {rng.randint(1960, 2012)}.",
          f"{b} coach {_full(rng)} said his team would learn from the defeat.",
          "Both teams play again next weekend.",
          f"The two sides meet again in the cup in {rng.choice(_MONTHS)}."]
    return lead, hl0, facts, quotes, bg


def _news_storm(rng):
    name = rng.choice(_STORMS)
    region = rng.choice(_REGIONS)
    day = rng.choice(_DAYS)
    w = rng.randrange(50, 130, 5)
    homes = _commas(rng.randrange(5000, 200000, 1000))
    k = rng.randint(20, 400)
    city = rng.choice(_NEWS_CITIES)
    lead = f"Storm {name} swept across {region} on {day}, bringing winds of up to {w} mph and heavy rain."
    hl0 = f"Storm {name} brings winds of up to {w} mph to {region}."
    facts = [(f"More than {homes} homes were left without power, officials said.", f"More than {homes} homes lose power."),
             (f"At least {k} flights were cancelled at {city} airport.", f"{k} flights cancelled at {city} airport.")]
    quotes = [f'"{rng.choice(("Please stay at home unless your journey is essential", "Our teams are working around the clock", "This is one of the worst storms in years"))},"'
              f" said {_full(rng)}, a spokesman for the emergency services."]
    bg = ["Forecasters said the storm would move east overnight.",
          f"It is the {_ordinal(rng.randint(2, 9))} named storm of the season.",
          f"The last storm of this strength hit the area in {rng.randint(1987, 2014)}.",
          f"Up to {rng.randint(2, 6)} inches of rain could fall in some areas.",
          "Several schools were closed as a precaution."]
    return lead, hl0, facts, quotes, bg


def _news_election(rng):
    cand, opp, prev = _full(rng), _full(rng), _full(rng)
    city = rng.choice(_NEWS_CITIES)
    day = rng.choice(_DAYS)
    p = rng.randint(40, 70)
    q = rng.randint(15, 100 - p - 2)
    t = rng.randint(25, 68)
    lead = f"{cand} won the race for mayor of {city} on {day}, taking {p} percent of the vote."
    hl0 = f"{cand} wins {city} mayoral race with {p} percent of the vote."
    facts = [(f"{cand}, a {rng.randint(35, 66)}-year-old former {rng.choice(_JOBS)}, defeated {opp}, who received {q} percent.",
              f"{opp} gets {q} percent."),
             (f"Turnout was {t} percent, election officials said.", f"Turnout was {t} percent.")]
    quotes = [f'"{rng.choice(("This is a victory for every family in this city", "Now the hard work begins", "I will be a mayor for everyone"))},"'
              f" {cand} told supporters."]
    bg = [f"{city} has a population of about {_commas(rng.randrange(150000, 900000, 1000))}.",
          "The campaign focused on housing, transport and crime.",
          f"The previous mayor, {prev}, did not run for re-election.",
          f"About {_commas(rng.randrange(100, 900, 10))} volunteers helped count the votes.",
          "The new mayor will take office next month."]
    return lead, hl0, facts, quotes, bg


def _news_accident(rng):
    veh = rng.choice(("bus", "coach", "truck", "minibus", "train"))
    road = rng.choice(_ROADS)
    city = rng.choice(_NEWS_CITIES)
    day = rng.choice(_DAYS)
    n = rng.randint(3, 40)
    k = rng.randint(1, max(1, n // 3))
    h = rng.randint(2, 9)
    lead = f"{n} people were injured when a {veh} crashed on {road} near {city} on {day} {rng.choice(('morning', 'evening', 'afternoon'))}."
    hl0 = f"{n} people injured in {veh} crash near {city}."
    facts = [(f"{k} of them are in a serious condition, police said.", f"{k} are in a serious condition."),
             (f"The road was closed for {h} hours.", f"Road closed for {h} hours.")]
    quotes = [f'"{rng.choice(("We are asking anyone who saw the crash to contact us", "It was a terrible scene", "The cause of the crash is not yet known"))},"'
              f" said police spokeswoman {_full(rng)}."]
    bg = ["Police have asked witnesses to come forward.",
          f"The same stretch of road saw {rng.randint(3, 15)} accidents last year.",
          f"The {rng.randint(24, 67)}-year-old driver was taken to hospital.",
          "Traffic was diverted through nearby villages.",
          "An investigation has been opened."]
    return lead, hl0, facts, quotes, bg


def _news_crime(rng):
    city = rng.choice(_NEWS_CITIES)
    age = rng.randint(18, 60)
    day, day2 = rng.sample(_DAYS, 2)
    shop = rng.choice(_NEWS_SHOPS)
    street = rng.choice(_STREETS)
    x = _commas(rng.randrange(500, 90000, 100))
    lead = f"Police in {city} arrested a {age}-year-old man on {day} after a robbery at a {shop} on {street}."
    hl0 = f"{age}-year-old man arrested after {shop} robbery in {city}."
    facts = [(f"The man is accused of stealing ${x} in cash.", f"${x} in cash stolen."),
             (f"He will appear in court on {day2}.", f"Suspect to appear in court on {day2}.")]
    quotes = [f'"{rng.choice(("We acted quickly and we got our man", "The staff were very brave", "Nobody was hurt, which is the main thing"))},"'
              f" said detective {_full(rng)}."]
    bg = [f"It is the {_ordinal(rng.randint(2, 6))} robbery on {street} this year.",
          "The shop reopened the next day.",
          "A second man is still being sought.",
          f"Crime in {city} fell by {rng.randint(2, 15)} percent last year.",
          "Local residents said they were shocked."]
    return lead, hl0, facts, quotes, bg


def _news_study(rng):
    habit, outcome = rng.choice(_HABITS)
    city = rng.choice(_NEWS_CITIES)
    p = rng.randint(10, 60)
    n = _commas(rng.randrange(500, 40000, 100))
    y = rng.randint(3, 25)
    author = _full(rng)
    lead = (f"People who {habit} are {p} percent less likely to {outcome}, according to a new study by "
            f"researchers at the University of {city}.")
    hl0 = f"People who {habit} are {p} percent less likely to {outcome}."
    facts = [(f"The researchers followed {n} adults for {y} years.", f"Study followed {n} adults for {y} years."),
             (f"The study was published in {rng.choice(_JOURNALS)}.", f"Study by University of {city} researchers.")]
    quotes = [f'"{rng.choice(("The results were clearer than we expected", "Small changes can make a big difference", "More research is needed"))},"'
              f" said lead author {author}."]
    bg = ["Earlier studies had found similar effects.",
          f"About {rng.randint(10, 40)} percent of adults already follow this advice.",
          "The researchers said the study had some limitations.",
          "Health officials welcomed the findings.",
          "The work was funded by a national research council."]
    return lead, hl0, facts, quotes, bg


def _news_fire(rng):
    b = rng.choice(_BUILDINGS)
    city = rng.choice(_NEWS_CITIES)
    day = rng.choice(_DAYS)
    n = rng.randint(20, 120)
    h = rng.randint(2, 12)
    k = rng.randint(10, 300)
    lead = f"A fire destroyed a {b} in {city} early on {day}."
    hl0 = f"Fire destroys {b} in {city}."
    facts = [(f"About {n} firefighters fought the blaze for {h} hours.", f"{n} firefighters fought the blaze for {h} hours."),
             (f"{k} residents were evacuated from nearby buildings.", f"{k} residents evacuated.")]
    quotes = [f'"{rng.choice(("The building was already in flames when we arrived", "It is a miracle that nobody died", "We are still trying to find the cause"))},"'
              f" said fire chief {_full(rng)}."]
    bg = [f"The {b} was built in {rng.randint(1880, 1995)}.",
          "The cause of the fire is not yet known.",
          f"Smoke could be seen {rng.randint(2, 20)} miles away.",
          "Roads in the area were closed for most of the day.",
          "No one was seriously injured."]
    return lead, hl0, facts, quotes, bg


_NEWS_TOPICS = (_news_company, _news_sport, _news_storm, _news_election, _news_accident, _news_crime,
                _news_study, _news_fire)
_GENERIC_BG = (
    "More details are expected to be released later this week.",
    "The news was widely shared on social media.",
    "Officials did not respond to requests for comment.",
    "It was not immediately clear what would happen next.",
    "The story was first reported by local media.",
    "Similar events have been reported in other parts of the country.",
)


def _one_article(rng: random.Random) -> Tuple[str, str]:
    topic = rng.choice(_NEWS_TOPICS)
    lead, hl0, facts, quotes, bg = topic(rng)
    n_hl = rng.choice((2, 3))
    hl_facts = facts[: n_hl - 1] if rng.random() < 0.6 else rng.sample(facts, n_hl - 1)
    other = [f for f in facts if f not in hl_facts]
    target = rng.randint(4, 15)
    body = [f[0] for f in sorted(hl_facts, key=facts.index)]
    pool = [f[0] for f in other] + quotes + bg + list(_GENERIC_BG)
    rng.shuffle(pool)
    # quotes are very common in news: prefer keeping one
    extra = []
    if quotes and rng.random() < 0.8:
        extra.append(quotes[0])
        pool.remove(quotes[0])
    while len(body) + len(extra) + 1 < target and pool:
        extra.append(pool.pop())
    # interleave: highlight facts keep their relative order, other sentences are inserted randomly
    sents = list(body)
    for s in extra:
        sents.insert(rng.randint(0, len(sents)), s)
    sents = [lead] + sents
    if rng.random() < 0.15 and len(sents) < 15:
        sents.append(f"CNN's {_full(rng)} contributed to this report.")
    prefix = "(CNN) -- " if rng.random() < 0.5 else ""
    article = prefix + " ".join(sents)
    highlights = "\n".join([hl0] + [f[1] for f in sorted(hl_facts, key=facts.index)])
    return article, highlights


def gen_news(n: int, seed: int) -> List[dict]:
    """CNN/DailyMail-like records ``{"id", "article", "highlights"}`` (highlights joined by ``"\\n"``)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, h = _one_article(rng)
        out.append({"id": _uid("news", seed, i, 40), "article": a, "highlights": h})
    return out


# ===========================================================================
# 3. Extractive QA (SQuAD v1.1 / v2.0)
# ===========================================================================

_SQ_CITIES = (("Lyon", "France"), ("Porto", "Portugal"), ("Krakow", "Poland"), ("Bergen", "Norway"),
              ("Leeds", "England"), ("Graz", "Austria"), ("Turin", "Italy"), ("Seville", "Spain"),
              ("Malmo", "Sweden"), ("Utrecht", "the Netherlands"), ("Ghent", "Belgium"), ("Brno", "the Czech Republic"),
              ("Tartu", "Estonia"), ("Cork", "Ireland"), ("Aarhus", "Denmark"), ("Bilbao", "Spain"),
              ("Basel", "Switzerland"), ("Split", "Croatia"), ("Pecs", "Hungary"), ("Lille", "France"),
              ("Bremen", "Germany"), ("Dresden", "Germany"), ("Bologna", "Italy"), ("Gdansk", "Poland"),
              ("Uppsala", "Sweden"), ("Tampere", "Finland"), ("Galway", "Ireland"), ("Nantes", "France"))
_RIVERS = ("Elbe", "Oder", "Vistula", "Rhone", "Danube", "Tagus", "Douro", "Po", "Ebro", "Meuse", "Scheldt",
           "Loire", "Shannon", "Glomma")
_FIELDS = ("chemistry", "physics", "mathematics", "medicine", "law", "history", "architecture", "philosophy",
           "biology", "economics", "music", "engineering")
_PS_JOBS = ("teacher", "engineer", "journalist", "doctor", "architect", "lawyer", "translator", "librarian")
_PRIZES = ("Royal Medal", "Golden Pen Award", "National Science Prize", "Hartley Medal", "European Book Prize",
           "Lorenz Prize", "Order of Merit")
_TOPICS = ("crystal structures", "river ecology", "ancient trade routes", "heart surgery", "number theory",
           "urban planning", "folk music", "solar energy", "bird migration", "early printing")
_BOOK_A = ("The Silent", "The Last", "A Distant", "The Broken", "The Hidden", "The Northern", "A Winter", "The Golden")
_BOOK_B = ("River", "Garden", "Harbour", "Letter", "Mountain", "Road", "Island", "Bridge", "Lantern", "Forest")
_ORG_B = ("Society of Young Scientists", "City Music Society", "Association of Translators", "Friends of the Library",
          "Mountain Rescue Club", "Workers' Education League")
_PRODUCTS = ("glass", "wool", "shipbuilding", "wine", "steel", "chocolate", "textile", "porcelain", "paper", "beer")
_FESTIVALS = ("Music Festival", "Film Festival", "Jazz Festival", "Book Fair", "Light Festival", "Food Festival")
_LANDMARKS = ("St. Mary's Tower", "the Old Town Hall", "the Cathedral of St. Peter", "the Water Tower",
              "the Grand Theatre", "the Clock Tower")
_SQ_COMPANIES = ("Norvik Motors", "Bluestone Bank", "Pellar Foods", "Arcadia Airlines", "Helix Pharma",
                 "Quanta Systems", "Riverton Steel", "Solara Energy", "Vantage Retail", "Kestrel Telecom",
                 "Marlow Media", "Zenith Electronics", "Harbor Shipping", "Crestline Foods", "Ostrava Glassworks",
                 "Lindqvist Tools", "Aurora Textiles", "Fenwick Chemicals")
_CO_PRODUCTS = ("trucks and buses", "kitchen appliances", "frozen foods", "mobile phones", "medical devices",
                "bicycles", "garden tools", "sports shoes", "electric cars", "office furniture", "video games")
_DIRS = ("north", "south", "east", "west", "north-east", "south-west")

# entity-type specific fact sentences.  [slot] = answer span; {S} = subject reference.
# each fact: (list of sentence templates, {slot: [question templates]})
_PERSON_FACTS = (
    (("{S} was born in [birth_city] in [birth_year].", "{S} was born in [birth_year] in the city of [birth_city].",
      "Born in [birth_city] in [birth_year], {S} was the eldest of four children."),
     {"birth_city": ("Where was {name} born?", "In which city was {name} born?", "What is the birthplace of {name}?"),
      "birth_year": ("In what year was {name} born?", "When was {name} born?", "What year was {name} born in?")}),
    (("{S} studied [field] at the University of [uni].", "{S} later studied [field] at the University of [uni], graduating in [grad_year]."),
     {"field": ("What did {name} study?", "Which subject did {name} study at university?"),
      "uni": ("At which university did {name} study?", "Where did {name} study {field}?"),
      "grad_year": ("When did {name} graduate?", "In which year did {name} graduate from university?")}),
    (("In [move_year], {S} moved to [move_city], where {he} worked as a [job] for [work_years].",
      "{S} moved to [move_city] in [move_year] and spent [work_years] working there as a [job]."),
     {"move_year": ("When did {name} move to {move_city}?", "In what year did {name} move to {move_city}?"),
      "move_city": ("Where did {name} move in {move_year}?", "To which city did {name} move in {move_year}?"),
      "job": ("What did {name} work as in {move_city}?", "What was {name}'s job in {move_city}?"),
      "work_years": ("How long did {name} work as a {job}?", "For how long did {name} work in {move_city}?")}),
    (("In [prize_year], {S} received the [prize] for {his} work on [topic].",
      "{S} was awarded the [prize] in [prize_year] for research on [topic]."),
     {"prize_year": ("When did {name} receive the {prize}?", "In what year was {name} awarded the {prize}?"),
      "prize": ("Which award did {name} receive in {prize_year}?", "What prize was {name} given in {prize_year}?"),
      "topic": ("For what work did {name} receive the {prize}?", "What was the prize-winning work of {name} about?")}),
    (("{S} wrote [n_books] books, the best known of which is [book].",
      "Over {his} career {S} published [n_books] books, including [book]."),
     {"n_books": ("How many books did {name} write?", "How many books did {name} publish?"),
      "book": ("What is the title of a book by {name}?", "Which book by {name} is mentioned?")}),
    (("In [marriage_year], {S} married [spouse], a [spouse_job] from [spouse_city].",
      "{S} married [spouse], a [spouse_job] from [spouse_city], in [marriage_year]."),
     {"spouse": ("Who did {name} marry?", "Whom did {name} marry in {marriage_year}?"),
      "marriage_year": ("When did {name} marry {spouse}?", "In what year did {name} get married?"),
      "spouse_job": ("What was the profession of {spouse}?", "What did {spouse} do for a living?"),
      "spouse_city": ("Where was {spouse} from?", "Which city did {spouse} come from?")}),
    (("{S} died in [death_city] in [death_year] at the age of [death_age].",
      "{S} died at the age of [death_age] in [death_city] in [death_year]."),
     {"death_city": ("Where did {name} die?", "In which city did {name} die?"),
      "death_year": ("When did {name} die?", "In what year did {name} die?"),
      "death_age": ("How old was {name} when {he} died?", "At what age did {name} die?")}),
    (("In [org_year], {S} founded the [org], which today has about [org_members] members.",),
     {"org": ("What organisation did {name} found?", "Which society did {name} establish in {org_year}?"),
      "org_year": ("When did {name} found the {org}?", "In what year was the {org} founded?"),
      "org_members": ("How many members does the {org} have today?", "How large is the membership of the {org}?")}),
)
_CITY_FACTS = (
    (("{S} is a city in [country], located on the [river] River.", "{S} is a town in [country] on the banks of the [river] River."),
     {"country": ("In which country is {name}?", "Which country is {name} located in?"),
      "river": ("On which river is {name} located?", "Which river flows through {name}?")}),
    (("{S} has a population of about [population].", "About [population] people live in {S}.",
      "According to the last census, {S} had [population] inhabitants."),
     {"population": ("What is the population of {name}?", "How many people live in {name}?",
                     "How many inhabitants does {name} have?")}),
    (("{S} was founded in [found_year] by [founder].", "{S} was founded by [founder] in [found_year]."),
     {"found_year": ("When was {name} founded?", "In what year was {name} founded?"),
      "founder": ("Who founded {name}?", "By whom was {name} founded?")}),
    (("{S} is best known for its [product] industry.", "The economy of {S} has long depended on the [product] industry."),
     {"product": ("What industry is {name} known for?", "Which industry has the economy of {name} depended on?")}),
    (("The current mayor of {S}, [mayor], was first elected in [mayor_year].",),
     {"mayor": ("Who is the mayor of {name}?", "Who is the current mayor of {name}?"),
      "mayor_year": ("When was the mayor of {name} first elected?", "In what year was {mayor} first elected?")}),
    (("{S} lies [distance] kilometres [direction] of [near_city].",),
     {"distance": ("How far is {name} from {near_city}?", "How many kilometres is {name} from {near_city}?"),
      "direction": ("In which direction from {near_city} does {name} lie?",),
      "near_city": ("Which city lies {distance} kilometres from {name}?",)}),
    (("Every [fest_month], {S} hosts the [festival], which attracts around [visitors] visitors.",),
     {"fest_month": ("In which month is the {festival} held?", "When does {name} host the {festival}?"),
      "festival": ("What event does {name} host every {fest_month}?",),
      "visitors": ("How many visitors does the {festival} attract?", "How many people visit the {festival}?")}),
    (("The most famous building in {S} is [landmark], built in [landmark_year] and [landmark_height] metres tall.",),
     {"landmark": ("What is the most famous building in {name}?",),
      "landmark_year": ("When was {landmark} built?", "In what year was {landmark} completed?"),
      "landmark_height": ("How tall is {landmark}?", "What is the height of {landmark}?")}),
)
_COMPANY_FACTS = (
    (("{S} was founded in [found_year] by [founder] in [found_city].", "{S} was founded by [founder] in [found_city] in [found_year]."),
     {"found_year": ("When was {name} founded?", "In what year was {name} established?"),
      "founder": ("Who founded {name}?", "Who was the founder of {name}?"),
      "found_city": ("In which city was {name} founded?", "Where was {name} founded?")}),
    (("Today {S} is headquartered in [hq_city].", "The headquarters of {S} are in [hq_city]."),
     {"hq_city": ("Where is {name} headquartered?", "Where are the headquarters of {name}?")}),
    (("{S} employs about [employees] people in [n_countries] countries.",),
     {"employees": ("How many people does {name} employ?", "How many employees does {name} have?"),
      "n_countries": ("In how many countries does {name} operate?", "How many countries does {name} have staff in?")}),
    (("{S} is best known for its [products].", "{S} mainly makes [products]."),
     {"products": ("What does {name} mainly make?", "What products is {name} best known for?")}),
    (("In [acq_year], {S} bought its rival [acquired] for [acq_price].",),
     {"acquired": ("Which company did {name} buy in {acq_year}?", "What rival did {name} acquire?"),
      "acq_year": ("When did {name} buy {acquired}?", "In what year did {name} acquire {acquired}?"),
      "acq_price": ("How much did {name} pay for {acquired}?", "What was the price of {acquired}?")}),
    (("Since [ceo_year], the chief executive of {S} has been [ceo].",),
     {"ceo": ("Who is the chief executive of {name}?", "Who runs {name}?"),
      "ceo_year": ("Since when has {ceo} been chief executive of {name}?",)}),
    (("In [rev_year], {S} reported revenue of [revenue].",),
     {"revenue": ("What was the revenue of {name} in {rev_year}?", "How much revenue did {name} report in {rev_year}?"),
      "rev_year": ("In which year did {name} report revenue of {revenue}?",)}),
)
_PERSON_FILL = (
    "{He} was known for a careful and patient style of work.",
    "Colleagues described {him} as generous and curious.",
    "Many of {his} letters have survived and are kept in a local archive.",
    "{He} spent most summers travelling with friends.",
    "{His} early years were marked by illness and poverty.",
    "Later biographers have questioned some of these accounts.",
    "{He} was also a keen amateur musician.",
    "{His} ideas were not widely accepted during {his} lifetime.",
    "A small museum dedicated to {his} life opened in {rand_year}.",
    "{His} younger brother, {rand_name}, became a successful lawyer.",
    "In {rand_year} {he} spent several months in {rand_city}.",
    "{He} often said that {he} owed everything to {his} teachers.",
    "A street in {rand_city} was later named after {him}.",
    "Few photographs of {him} exist today.",
    "{His} parents ran a small bakery near the market.",
    "As a child {he} was fascinated by maps and old books.",
    "{He} rarely gave interviews and avoided public events.",
    "Some of {his} early work was lost in a fire in {rand_year}.",
    "{He} corresponded with many scholars across Europe.",
    "{His} health declined steadily in the last years of {his} life.",
)
_CITY_FILL = (
    "The old town has narrow streets and many small shops.",
    "The climate is mild, with warm summers and cool winters.",
    "Tourism has grown steadily in recent decades.",
    "The city has a large university and a busy railway station.",
    "Several parks run along the river.",
    "The local football club plays in the second division.",
    "In {rand_year} a large fire destroyed much of the centre.",
    "A new bridge was opened in {rand_year}.",
    "Many residents commute to nearby {rand_city} for work.",
    "The surrounding hills are covered with forests and vineyards.",
    "About {rand_num} students attend the local university.",
    "The central square is surrounded by cafes and restaurants.",
    "Its harbour was once one of the busiest in the region.",
    "The city was badly damaged during the war.",
    "The main railway line to the capital was completed in {rand_year}.",
    "Its market square is one of the largest in the country.",
    "The local dialect differs noticeably from the standard language.",
    "Most of the houses in the centre date from the eighteenth century.",
    "The city council has {rand_small} members.",
    "A large textile fair was held there every autumn until {rand_year}.",
)
_COMPANY_FILL = (
    "The company has faced strong competition in recent years.",
    "Analysts expect the market to keep growing.",
    "Its products are sold in shops and online.",
    "The firm has been criticised for its environmental record.",
    "A new research centre opened in {rand_year}.",
    "Shares of the company are traded on the stock exchange.",
    "In {rand_year} it opened its first office abroad.",
    "The logo of the company has changed several times.",
    "It sponsors several local sports teams.",
    "Around {rand_num} people applied for jobs there last year.",
    "Its first factory was a small workshop with {rand_small} workers.",
    "The company went through a difficult period in the {rand_decade}s.",
    "Its annual report is published every spring.",
    "The company has won several awards for its designs.",
    "In {rand_year} workers at its main plant went on strike.",
    "It also runs a training programme for young engineers.",
    "Most of its sales come from customers in Europe.",
    "The brand is well known among younger buyers.",
)
_GENERIC_FILL = (
    "Historians have written extensively about this period.",
    "These details are recorded in several official documents.",
    "Not all sources agree on every detail of this account.",
    "The surrounding region was largely rural at the time.",
    "Records from this period are incomplete.",
    "A detailed account was published in {rand_year}.",
    "Several newspapers reported on these events.",
    "The period was marked by rapid economic change.",
)


def _sq_person(rng):
    first = rng.choice(_ALL_NAMES)
    sur = rng.choice(_SURNAMES)
    g = _GENDER[first]
    city, _ = rng.choice(_SQ_CITIES)
    by = rng.randint(1820, 1960)
    my = by + rng.randint(22, 35)
    dy = by + rng.randint(58, 95)
    v = {
        "birth_city": city, "birth_year": str(by), "field": rng.choice(_FIELDS),
        "uni": rng.choice(_SQ_CITIES)[0], "grad_year": str(by + rng.randint(21, 26)),
        "move_year": str(my), "move_city": rng.choice(_SQ_CITIES)[0], "job": rng.choice(_PS_JOBS),
        "work_years": f"{rng.randint(3, 20)} years",
        "prize_year": str(my + rng.randint(3, 20)), "prize": rng.choice(_PRIZES),
        "topic": rng.choice(_TOPICS), "n_books": str(rng.randint(2, 25)),
        "book": f"{rng.choice(_BOOK_A)} {rng.choice(_BOOK_B)}",
        "marriage_year": str(by + rng.randint(22, 40)), "spouse": _full(rng), "spouse_job": rng.choice(_PS_JOBS),
        "spouse_city": rng.choice(_SQ_CITIES)[0],
        "death_city": rng.choice(_SQ_CITIES)[0], "death_year": str(dy), "death_age": str(dy - by),
        "org_year": str(my + rng.randint(1, 15)), "org": rng.choice(_ORG_B),
        "org_members": _commas(rng.randrange(200, 20000, 50)),
    }
    name = f"{first} {sur}"
    refs = [sur, _PR[g]["he"]]
    return name, g, v, refs, _PERSON_FACTS, _PERSON_FILL


def _sq_city(rng):
    city, country = rng.choice(_SQ_CITIES)
    v = {
        "country": country, "river": rng.choice(_RIVERS),
        "population": _commas(rng.randrange(20000, 900000, 1000)),
        "found_year": str(rng.randint(900, 1700)), "founder": _full(rng),
        "product": rng.choice(_PRODUCTS), "mayor": _full(rng), "mayor_year": str(rng.randint(1995, 2016)),
        "distance": str(rng.randint(15, 300)), "direction": rng.choice(_DIRS),
        "near_city": rng.choice([c for c, _ in _SQ_CITIES if c != city]),
        "fest_month": rng.choice(_MONTHS), "festival": f"{city} {rng.choice(_FESTIVALS)}",
        "visitors": _commas(rng.randrange(5000, 400000, 1000)),
        "landmark": rng.choice(_LANDMARKS), "landmark_year": str(rng.randint(1200, 1910)),
        "landmark_height": str(rng.randint(30, 160)),
    }
    return city, "n", v, ["the city", city], _CITY_FACTS, _CITY_FILL


def _sq_company(rng):
    name = rng.choice(_SQ_COMPANIES)
    fy = rng.randint(1870, 2005)
    v = {
        "found_year": str(fy), "founder": _full(rng), "found_city": rng.choice(_SQ_CITIES)[0],
        "hq_city": rng.choice(_SQ_CITIES)[0], "employees": _commas(rng.randrange(500, 120000, 100)),
        "n_countries": str(rng.randint(3, 60)), "products": rng.choice(_CO_PRODUCTS),
        "acq_year": str(rng.randint(max(fy + 5, 1950), 2016)),
        "acquired": rng.choice([c for c in _SQ_COMPANIES if c != name]), "acq_price": _money(rng),
        "ceo": _full(rng), "ceo_year": str(rng.randint(1995, 2016)),
        "rev_year": str(rng.randint(2005, 2016)), "revenue": _money(rng),
    }
    return name, "n", v, ["the company", name], _COMPANY_FACTS, _COMPANY_FILL


_SLOT_RE = re.compile(r"\[(\w+)\]")


def _render(tmpl: str, vals: Dict[str, str]) -> Tuple[str, Dict[str, Tuple[int, str]]]:
    out, spans, n, pos = [], {}, 0, 0
    for m in _SLOT_RE.finditer(tmpl):
        lit = tmpl[pos:m.start()]
        out.append(lit)
        n += len(lit)
        val = vals[m.group(1)]
        spans[m.group(1)] = (n, val)
        out.append(val)
        n += len(val)
        pos = m.end()
    out.append(tmpl[pos:])
    return "".join(out), spans


def _pron_fill(s: str, g: str) -> str:
    for k, val in _PR[g].items():
        s = s.replace("{" + k + "}", val)
    return s


def _fill_filler(rng: random.Random, s: str, g: str) -> str:
    s = _pron_fill(s, g)
    return s.format(rand_year=rng.randint(1850, 2010), rand_name=_full(rng), rand_city=rng.choice(_SQ_CITIES)[0],
                    rand_num=_commas(rng.randrange(2000, 40000, 500)), rand_small=rng.randint(4, 30),
                    rand_decade=rng.choice((1930, 1970, 1980, 1990)))


def _make_paragraph(rng, name, g, vals, refs, facts, fillers, n_fill, version_2, qid, other_names, missing_facts,
                    distractors=()):
    """Build one context; returns (context, qas)."""
    sentences = []        # (text, spans or None)
    for k, (tmpls, _qs) in enumerate(facts):
        t = rng.choice(tmpls)
        ref = name if k == 0 else rng.choice(refs)
        t = t.replace("{S}", ref)
        t = _pron_fill(t, g)
        text, spans = _render(t, vals)
        sentences.append((_cap(text), spans, _qs))
    fill = rng.sample(fillers, min(n_fill, len(fillers)))
    if n_fill > len(fillers):
        fill += rng.sample(_GENERIC_FILL, min(n_fill - len(fillers), len(_GENERIC_FILL)))
    for f in fill:
        sentences.insert(rng.randint(1, len(sentences)), (_fill_filler(rng, f, g), None, None))
    for d in distractors:
        sentences.insert(rng.randint(1, len(sentences)), (d, None, None))
    context_parts, offset = [], 0
    qas = []
    candidates = []
    for text, spans, qs in sentences:
        if spans:
            for slot, (st, val) in spans.items():
                if slot in qs:
                    candidates.append((slot, offset + st, val, qs[slot]))
        context_parts.append(text)
        offset += len(text) + 1
    context = " ".join(context_parts)
    rng.shuffle(candidates)
    n_q = min(len(candidates), rng.randint(2, 6))
    fmt = dict(vals, name=name, **_PR[g])
    chosen = candidates[:n_q]
    chosen.sort(key=lambda c: c[1])
    for slot, start, val, qtmpls in chosen:
        q = rng.choice(qtmpls).format(**fmt)
        assert context[start:start + len(val)] == val
        qa = {"id": qid(), "question": q, "answers": [{"text": val, "answer_start": start}]}
        if version_2:
            qa["is_impossible"] = False
        qas.append(qa)
    if version_2:
        n_imp = max(1, round(len(qas) / 2)) if rng.random() < 0.95 else 0
        for _ in range(n_imp):
            if missing_facts and (rng.random() < 0.5 or not chosen):
                # ask about a fact that is not in the context
                _tm, qs = rng.choice(missing_facts)
                slot = rng.choice(sorted(qs))
                q = rng.choice(qs[slot]).format(**fmt)
                qa = {"id": qid(), "question": q, "answers": [], "is_impossible": True}
            elif chosen:
                # ask the same thing about another entity: plausible but unanswerable
                slot, start, val, qtmpls = rng.choice(chosen)
                other = rng.choice(other_names)
                f2 = dict(fmt, name=other)
                q = rng.choice(qtmpls).format(**f2)
                qa = {"id": qid(), "question": q, "answers": [], "is_impossible": True,
                      "plausible_answers": [{"text": val, "answer_start": start}]}
            else:
                continue
            qas.insert(rng.randint(0, len(qas)), qa)
    return context, qas


def gen_squad(n: int, seed: int, version_2: bool = False) -> dict:
    """SQuAD-format JSON with ``n`` questions in total (about 1/3 unanswerable when ``version_2``)."""
    rng = random.Random(seed)
    counter = [0]

    def qid() -> str:
        counter[0] += 1
        return _uid("squad2" if version_2 else "squad", seed, counter[0])

    data = []
    total = 0
    while total < n:
        kind = rng.random()
        maker = _sq_person if kind < 0.4 else (_sq_city if kind < 0.7 else _sq_company)
        name, g, vals, refs, facts, fillers = maker(rng)
        # a second entity of the same type: distractor sentences in long contexts
        d_name, d_g, d_vals = name, g, None
        while d_name == name:
            d_name, d_g, d_vals, _r, _f, _fi = maker(rng)
        if maker is _sq_person:
            pool = [_full(rng) for _ in range(3)]
        elif maker is _sq_city:
            pool = [c for c, _ in rng.sample(_SQ_CITIES, 5)]
        else:
            pool = rng.sample(_SQ_COMPANIES, 5)
        others = [o for o in pool if o not in (name, d_name)]
        facts = list(facts)
        first, rest = facts[0], facts[1:]
        rng.shuffle(rest)
        mode = rng.random()
        if mode < 0.35:
            # one long paragraph with (almost) all facts, many filler and a few distractor sentences
            k = rng.randint(max(2, len(rest) - 2), len(rest))
            groups = [[first] + rest[:k]]
            n_fills = [rng.randint(6, 20)]
            n_dist = [rng.randint(1, 3)]
        else:
            k = rng.randint(1, min(len(rest), 6))
            used = [first] + rest[:k]
            n_par = rng.randint(1, max(1, min(3, len(used) // 2)))
            groups = [used[i::n_par] for i in range(n_par)]
            n_fills = [rng.randint(0, 3) for _ in groups]
            n_dist = [1 if rng.random() < 0.15 else 0 for _ in groups]
        paragraphs = []
        for grp, nf, nd in zip(groups, n_fills, n_dist):
            missing = [f for f in facts if f not in grp]
            dist = []
            for tm, _qs in rng.sample(facts, nd):
                t = _pron_fill(rng.choice(tm).replace("{S}", d_name), d_g)
                dist.append(_cap(_render(t, d_vals)[0]))
            ctx, qas = _make_paragraph(rng, name, g, vals, refs, grp, fillers, nf, version_2, qid, others, missing,
                                       dist)
            if not qas:
                continue
            if total + len(qas) > n:
                qas = qas[: n - total]
            total += len(qas)
            paragraphs.append({"context": ctx, "qas": qas})
            if total >= n:
                break
        if paragraphs:
            data.append({"title": name.replace(" ", "_"), "paragraphs": paragraphs})
    return {"version": "v2.0" if version_2 else "1.1", "data": data}


def squad_to_records(squad_json: dict) -> List[dict]:
    """Flatten SQuAD JSON into HF ``squad``-style rows (answers as dict of lists)."""
    rows = []
    for art in squad_json["data"]:
        for par in art["paragraphs"]:
            for qa in par["qas"]:
                rows.append({
                    "id": qa["id"], "title": art["title"], "context": par["context"], "question": qa["question"],
                    "answers": {"text": [a["text"] for a in qa["answers"]],
                                "answer_start": [a["answer_start"] for a in qa["answers"]]},
                })
    return rows


# ===========================================================================
# 4. Translation German -> English (IWSLT-like) from a small bilingual grammar
# ===========================================================================

# de | de plural ('-' = mass noun) | gender | en | en plural | class | weak accusative (optional)
_NOUN_SRC = """
Mann|Männer|m|man|men|person
Frau|Frauen|f|woman|women|person
Kind|Kinder|n|child|children|person
Junge|Jungen|m|boy|boys|person|Jungen
Mädchen|Mädchen|n|girl|girls|person
Lehrer|Lehrer|m|teacher|teachers|person
Lehrerin|Lehrerinnen|f|teacher|teachers|person
Arzt|Ärzte|m|doctor|doctors|person
Ärztin|Ärztinnen|f|doctor|doctors|person
Student|Studenten|m|student|students|person|Studenten
Studentin|Studentinnen|f|student|students|person
Freund|Freunde|m|friend|friends|person
Freundin|Freundinnen|f|friend|friends|person
Bruder|Brüder|m|brother|brothers|person
Schwester|Schwestern|f|sister|sisters|person
Vater|Väter|m|father|fathers|person
Mutter|Mütter|f|mother|mothers|person
Nachbar|Nachbarn|m|neighbour|neighbours|person|Nachbarn
Nachbarin|Nachbarinnen|f|neighbour|neighbours|person
Koch|Köche|m|cook|cooks|person
Kellner|Kellner|m|waiter|waiters|person
Polizist|Polizisten|m|police officer|police officers|person|Polizisten
Chef|Chefs|m|boss|bosses|person
Sohn|Söhne|m|son|sons|person
Tochter|Töchter|f|daughter|daughters|person
Onkel|Onkel|m|uncle|uncles|person
Tante|Tanten|f|aunt|aunts|person
Großmutter|Großmütter|f|grandmother|grandmothers|person
Großvater|Großväter|m|grandfather|grandfathers|person
Verkäufer|Verkäufer|m|salesman|salesmen|person
Hund|Hunde|m|dog|dogs|animal
Katze|Katzen|f|cat|cats|animal
Pferd|Pferde|n|horse|horses|animal
Vogel|Vögel|m|bird|birds|animal
Fisch|Fische|m|fish|fish|animal
Maus|Mäuse|f|mouse|mice|animal
Kuh|Kühe|f|cow|cows|animal
Schwein|Schweine|n|pig|pigs|animal
Ente|Enten|f|duck|ducks|animal
Schaf|Schafe|n|sheep|sheep|animal
Apfel|Äpfel|m|apple|apples|food
Brot|Brote|n|loaf of bread|loaves of bread|food
Kuchen|Kuchen|m|cake|cakes|food
Suppe|Suppen|f|soup|soups|food
Ei|Eier|n|egg|eggs|food
Banane|Bananen|f|banana|bananas|food
Tomate|Tomaten|f|tomato|tomatoes|food
Kartoffel|Kartoffeln|f|potato|potatoes|food
Pizza|Pizzen|f|pizza|pizzas|food
Salat|Salate|m|salad|salads|food
Wurst|Würste|f|sausage|sausages|food
Orange|Orangen|f|orange|oranges|food
Birne|Birnen|f|pear|pears|food
Käse|-|m|cheese|-|food
Fleisch|-|n|meat|-|food
Reis|-|m|rice|-|food
Schokolade|-|f|chocolate|-|food
Sandwich|Sandwiches|n|sandwich|sandwiches|food
Keks|Kekse|m|biscuit|biscuits|food
Zitrone|Zitronen|f|lemon|lemons|food
Kaffee|-|m|coffee|-|drink
Tee|-|m|tea|-|drink
Wasser|-|n|water|-|drink
Milch|-|f|milk|-|drink
Saft|-|m|juice|-|drink
Bier|Biere|n|beer|beers|drink
Wein|-|m|wine|-|drink
Limonade|-|f|lemonade|-|drink
Buch|Bücher|n|book|books|readable
Zeitung|Zeitungen|f|newspaper|newspapers|readable
Brief|Briefe|m|letter|letters|readable
Zeitschrift|Zeitschriften|f|magazine|magazines|readable
Roman|Romane|m|novel|novels|readable
Gedicht|Gedichte|n|poem|poems|readable
Nachricht|Nachrichten|f|message|messages|readable
E-Mail|E-Mails|f|email|emails|readable
Geschichte|Geschichten|f|story|stories|readable
Wörterbuch|Wörterbücher|n|dictionary|dictionaries|readable
Karte|Karten|f|map|maps|readable
Rechnung|Rechnungen|f|bill|bills|readable
Kleid|Kleider|n|dress|dresses|clothes
Hemd|Hemden|n|shirt|shirts|clothes
Jacke|Jacken|f|jacket|jackets|clothes
Schuh|Schuhe|m|shoe|shoes|clothes
Hut|Hüte|m|hat|hats|clothes
Mantel|Mäntel|m|coat|coats|clothes
Pullover|Pullover|m|jumper|jumpers|clothes
Rock|Röcke|m|skirt|skirts|clothes
Mütze|Mützen|f|cap|caps|clothes
Schal|Schals|m|scarf|scarves|clothes
Computer|Computer|m|computer|computers|device
Telefon|Telefone|n|phone|phones|device
Handy|Handys|n|mobile phone|mobile phones|device
Fernseher|Fernseher|m|television|televisions|device
Radio|Radios|n|radio|radios|device
Kamera|Kameras|f|camera|cameras|device
Uhr|Uhren|f|watch|watches|device
Lampe|Lampen|f|lamp|lamps|device
Drucker|Drucker|m|printer|printers|device
Laptop|Laptops|m|laptop|laptops|device
Auto|Autos|n|car|cars|vehicle
Fahrrad|Fahrräder|n|bike|bikes|vehicle
Bus|Busse|m|bus|buses|vehicle
Zug|Züge|m|train|trains|vehicle
Boot|Boote|n|boat|boats|vehicle
Flugzeug|Flugzeuge|n|plane|planes|vehicle
Taxi|Taxis|n|taxi|taxis|vehicle
Motorrad|Motorräder|n|motorbike|motorbikes|vehicle
Tasche|Taschen|f|bag|bags|container
Koffer|Koffer|m|suitcase|suitcases|container
Flasche|Flaschen|f|bottle|bottles|container
Glas|Gläser|n|glass|glasses|container
Paket|Pakete|n|parcel|parcels|container
Kiste|Kisten|f|box|boxes|container
Rucksack|Rucksäcke|m|backpack|backpacks|container
Tasse|Tassen|f|cup|cups|container
Kühlschrank|Kühlschränke|m|fridge|fridges|container
Tisch|Tische|m|table|tables|thing
Stuhl|Stühle|m|chair|chairs|thing
Bett|Betten|n|bed|beds|thing
Schrank|Schränke|m|cupboard|cupboards|thing
Sofa|Sofas|n|sofa|sofas|thing
Schlüssel|Schlüssel|m|key|keys|thing
Ball|Bälle|m|ball|balls|thing
Bild|Bilder|n|picture|pictures|thing
Geschenk|Geschenke|n|present|presents|thing
Blume|Blumen|f|flower|flowers|thing
Ring|Ringe|m|ring|rings|thing
Kerze|Kerzen|f|candle|candles|thing
Stift|Stifte|m|pen|pens|thing
Heft|Hefte|n|notebook|notebooks|thing
Ticket|Tickets|n|ticket|tickets|thing
Regenschirm|Regenschirme|m|umbrella|umbrellas|thing
Spiegel|Spiegel|m|mirror|mirrors|thing
Teppich|Teppiche|m|carpet|carpets|thing
Gitarre|Gitarren|f|guitar|guitars|thing
Spiel|Spiele|n|game|games|thing
Teller|Teller|m|plate|plates|thing
Messer|Messer|n|knife|knives|thing
Löffel|Löffel|m|spoon|spoons|thing
Fenster|Fenster|n|window|windows|thing
Tür|Türen|f|door|doors|thing
Haus|Häuser|n|house|houses|building
Wohnung|Wohnungen|f|flat|flats|building
Zimmer|Zimmer|n|room|rooms|building
Küche|Küchen|f|kitchen|kitchens|building
Garten|Gärten|m|garden|gardens|building
Museum|Museen|n|museum|museums|building
Kirche|Kirchen|f|church|churches|building
Schule|Schulen|f|school|schools|building
Hotel|Hotels|n|hotel|hotels|building
Restaurant|Restaurants|n|restaurant|restaurants|building
Bahnhof|Bahnhöfe|m|station|stations|building
Stadt|Städte|f|town|towns|building
Dorf|Dörfer|n|village|villages|building
Brücke|Brücken|f|bridge|bridges|building
Park|Parks|m|park|parks|building
Film|Filme|m|film|films|media
Lied|Lieder|n|song|songs|media
Baum|Bäume|m|tree|trees|nature
Berg|Berge|m|mountain|mountains|nature
See|Seen|m|lake|lakes|nature
Fluss|Flüsse|m|river|rivers|nature
Insel|Inseln|f|island|islands|nature
Idee|Ideen|f|idea|ideas|abstract
Frage|Fragen|f|question|questions|abstract
Problem|Probleme|n|problem|problems|abstract
Antwort|Antworten|f|answer|answers|abstract
Wetter|-|n|weather|-|weather
"""


class _N:
    __slots__ = ("de", "pl", "g", "en", "en_pl", "cls", "acc", "mass")

    def __init__(self, line: str):
        f = line.split("|")
        self.de, self.pl, self.g, self.en, self.en_pl, self.cls = f[:6]
        self.acc = f[6] if len(f) > 6 else self.de
        self.mass = self.pl == "-"


_NOUNS = [_N(x) for x in _NOUN_SRC.strip().splitlines()]
_NOUN_BY_DE = {n.de: n for n in _NOUNS}
_NOUNS_BY_CLS: Dict[str, List[_N]] = {}
for _n in _NOUNS:
    _NOUNS_BY_CLS.setdefault(_n.cls, []).append(_n)

# predicative | attributive stem | en | noun classes
_ADJ_SRC = """
groß|groß|big|animal,device,vehicle,container,thing,building,nature,clothes,person
klein|klein|small|animal,device,vehicle,container,thing,building,nature,clothes,person
alt|alt|old|person,animal,device,vehicle,container,thing,building,clothes,readable
neu|neu|new|device,vehicle,container,thing,building,clothes,readable,media
jung|jung|young|person,animal
schön|schön|beautiful|person,animal,clothes,thing,building,nature,media,weather
rot|rot|red|clothes,vehicle,container,thing
blau|blau|blue|clothes,vehicle,container,thing
grün|grün|green|clothes,vehicle,container,thing
schwarz|schwarz|black|clothes,vehicle,container,thing,animal,device
weiß|weiß|white|clothes,vehicle,container,thing,animal
gelb|gelb|yellow|clothes,vehicle,thing
teuer|teur|expensive|device,vehicle,clothes,thing,food,drink
billig|billig|cheap|device,vehicle,clothes,thing,drink
gut|gut|good|readable,media,food,drink,person,device,abstract,weather
schlecht|schlecht|bad|readable,media,food,drink,abstract,weather
lang|lang|long|readable,media,clothes,nature
kurz|kurz|short|readable,media,clothes
warm|warm|warm|food,drink,clothes,weather
kalt|kalt|cold|food,drink,weather
heiß|heiß|hot|food,drink,weather
frisch|frisch|fresh|food,drink
lecker|lecker|delicious|food
süß|süß|sweet|food,drink,animal
interessant|interessant|interesting|readable,media,person,abstract,building
langweilig|langweilig|boring|readable,media,person
müde|müd|tired|person,animal
glücklich|glücklich|happy|person
traurig|traurig|sad|person,media
freundlich|freundlich|friendly|person,animal
klug|klug|clever|person,animal
laut|laut|loud|person,animal,device,media
leise|leis|quiet|person,device,media
schnell|schnell|fast|vehicle,animal,person,device
langsam|langsam|slow|vehicle,animal,person,device
sauber|sauber|clean|clothes,vehicle,container,thing,building
schmutzig|schmutzig|dirty|clothes,vehicle,container,thing,building
kaputt|kaputt|broken|device,vehicle,container,thing
wichtig|wichtig|important|readable,abstract,person
einfach|einfach|simple|abstract
schwer|schwer|heavy|container,thing,device
leicht|leicht|light|container,thing,device
voll|voll|full|container
leer|leer|empty|container
krank|krank|sick|person,animal
hungrig|hungrig|hungry|person,animal
dunkel|dunkl|dark|building,clothes,thing
hell|hell|bright|building,thing,device
modern|modern|modern|building,device,vehicle
"""
_ADJS = [tuple(x.split("|")) for x in _ADJ_SRC.strip().splitlines()]
_ADJ_BY_CLS: Dict[str, list] = {}
for _ad in _ADJS:
    for _c in _ad[3].split(","):
        _ADJ_BY_CLS.setdefault(_c, []).append(_ad)


def _reg_de(stem: str) -> List[str]:
    if stem.endswith(("t", "d", "chn", "ffn", "gn")):
        return [stem + "e", stem + "est", stem + "et", stem + "en", stem + "et", stem + "en"]
    if stem.endswith(("s", "ß", "z", "x")):
        return [stem + "e", stem + "t", stem + "t", stem + "en", stem + "t", stem + "en"]
    return [stem + "e", stem + "st", stem + "t", stem + "en", stem + "t", stem + "en"]


# infinitive | present forms (empty = regular) | participle | aux h/s | en base | en 3sg | en past | objects
_VERB_SRC = """
sehen|sehe,siehst,sieht,sehen,seht,sehen|gesehen|h|see|sees|saw|person,animal,vehicle,building,nature,thing,media,device
kaufen||gekauft|h|buy|buys|bought|food,drink,readable,clothes,device,vehicle,container,thing
haben|habe,hast,hat,haben,habt,haben|gehabt|h|have|has|had|animal,device,vehicle,container,thing,abstract,clothes
brauchen||gebraucht|h|need|needs|needed|food,drink,device,vehicle,container,thing,clothes
suchen||gesucht|h|look for|looks for|looked for|person,animal,device,container,thing,readable,clothes
finden|finde,findest,findet,finden,findet,finden|gefunden|h|find|finds|found|animal,device,container,thing,readable,clothes
essen|esse,isst,isst,essen,esst,essen|gegessen|h|eat|eats|ate|food
trinken||getrunken|h|drink|drinks|drank|drink
mögen|mag,magst,mag,mögen,mögt,mögen|gemocht|h|like|likes|liked|person,animal,food,drink,readable,media,clothes,building
lesen|lese,liest,liest,lesen,lest,lesen|gelesen|h|read|reads|read|readable
schreiben||geschrieben|h|write|writes|wrote|=Brief,=E-Mail,=Nachricht,=Gedicht,=Geschichte,=Buch,=Lied,=Roman
nehmen|nehme,nimmst,nimmt,nehmen,nehmt,nehmen|genommen|h|take|takes|took|food,container,thing,=Bus,=Zug,=Taxi
bringen||gebracht|h|bring|brings|brought|food,drink,container,thing,readable
besuchen||besucht|h|visit|visits|visited|person,=Museum,=Kirche,=Schule,=Stadt,=Dorf,=Park,=Restaurant
öffnen|öffne,öffnest,öffnet,öffnen,öffnet,öffnen|geöffnet|h|open|opens|opened|container,=Tür,=Fenster,=Brief
verkaufen||verkauft|h|sell|sells|sold|food,device,vehicle,thing,clothes,=Haus,=Wohnung
tragen|trage,trägst,trägt,tragen,tragt,tragen|getragen|h|wear|wears|wore|clothes
kochen||gekocht|h|cook|cooks|cooked|=Suppe,=Reis,=Kartoffel,=Ei,=Fleisch,=Kaffee,=Tee,=Wurst
waschen|wasche,wäschst,wäscht,waschen,wascht,waschen|gewaschen|h|wash|washes|washed|clothes,=Auto,=Hund,=Tasse,=Teller
reparieren||repariert|h|repair|repairs|repaired|device,=Auto,=Fahrrad,=Motorrad,=Tür,=Fenster,=Stuhl,=Tisch
hören||gehört|h|hear|hears|heard|=Lied,=Radio,animal
vergessen|vergesse,vergisst,vergisst,vergessen,vergesst,vergessen|vergessen|h|forget|forgets|forgot|=Schlüssel,=Ticket,=Regenschirm,=Tasche,=Rucksack,=Handy,=Brief
verlieren||verloren|h|lose|loses|lost|=Schlüssel,=Ticket,=Regenschirm,=Tasche,=Ring,=Handy,=Uhr,=Ball
bestellen||bestellt|h|order|orders|ordered|food,drink
schicken||geschickt|h|send|sends|sent|=Brief,=E-Mail,=Nachricht,=Paket,=Geschenk,=Bild
lieben||geliebt|h|love|loves|loved|person,animal,food,media
kennen|kenne,kennst,kennt,kennen,kennt,kennen|gekannt|h|know|knows|knew|person,=Stadt,=Dorf,=Restaurant,=Hotel,=Lied,=Film
putzen||geputzt|h|clean|cleans|cleaned|=Küche,=Zimmer,=Wohnung,=Haus,=Auto,=Fenster
malen||gemalt|h|paint|paints|painted|=Bild,animal,=Haus,=Brücke,=Kirche,nature
bauen||gebaut|h|build|builds|built|=Haus,=Brücke,=Schule,=Tisch,=Stuhl,=Boot
"""


class _V:
    __slots__ = ("inf", "pres", "pp", "aux", "en", "en3", "enp", "objs")

    def __init__(self, line: str):
        f = line.split("|")
        self.inf = f[0]
        self.pres = f[1].split(",") if f[1] else _reg_de(f[0][:-2])
        self.pp, self.aux, self.en, self.en3, self.enp = f[2], f[3], f[4], f[5], f[6]
        objs: List[_N] = []
        for o in f[7].split(","):
            if o.startswith("="):
                objs.append(_NOUN_BY_DE[o[1:]])
            else:
                objs.extend(_NOUNS_BY_CLS[o])
        self.objs = objs


_VERBS = [_V(x) for x in _VERB_SRC.strip().splitlines()]
_ANIMAL_VERBS = [v for v in _VERBS if v.inf in ("sehen", "suchen", "finden", "essen", "trinken", "mögen", "hören")]

_MOTION = (
    # inf, present, participle, en base/3sg/past, destinations
    ("gehen", _reg_de("geh"), "gegangen", ("go", "goes", "went"),
     (("in den Park", "to the park"), ("ins Kino", "to the cinema"), ("zur Schule", "to school"),
      ("zur Arbeit", "to work"), ("nach Hause", "home"), ("zum Arzt", "to the doctor"),
      ("in den Supermarkt", "to the supermarket"), ("ins Büro", "to the office"), ("in die Stadt", "into town"),
      ("ins Bett", "to bed"), ("ins Museum", "to the museum"), ("zum Bahnhof", "to the station"))),
    ("fahren", "fahre,fährst,fährt,fahren,fahrt,fahren".split(","), "gefahren", ("travel", "travels", "travelled"),
     (("zum Bahnhof", "to the station"), ("in die Stadt", "into town"), ("an den See", "to the lake"),
      ("zum Flughafen", "to the airport"), ("ans Meer", "to the sea"), ("in die Berge", "to the mountains"), ("CITY", "CITY"))),
    ("fliegen", _reg_de("flieg"), "geflogen", ("fly", "flies", "flew"), (("CITY", "CITY"),)),
    ("kommen", _reg_de("komm"), "gekommen", ("come", "comes", "came"),
     (("nach Hause", "home"), ("zur Party", "to the party"), ("ins Büro", "to the office"), ("CITY", "CITY"))),
)
_LOCATIVE = (
    # inf, present, participle, en forms, allowed places (None = all)
    ("arbeiten", _reg_de("arbeit"), "gearbeitet", ("work", "works", "worked"), None),
    ("wohnen", _reg_de("wohn"), "gewohnt", ("live", "lives", "lived"),
     (("CITY", "CITY"), ("bei meiner Tante", "at my aunt's"), ("auf dem Land", "in the country"),
      ("in der Stadt", "in town"), ("im Hotel", "at the hotel"))),
    ("schlafen", "schlafe,schläfst,schläft,schlafen,schlaft,schlafen".split(","), "geschlafen", ("sleep", "sleeps", "slept"),
     (("im Hotel", "at the hotel"), ("zu Hause", "at home"), ("im Garten", "in the garden"),
      ("bei meiner Tante", "at my aunt's"), ("im Zug", "on the train"))),
    ("warten", _reg_de("wart"), "gewartet", ("wait", "waits", "waited"), None),
    ("essen", "esse,isst,isst,essen,esst,essen".split(","), "gegessen", ("eat", "eats", "ate"),
     (("im Restaurant", "in the restaurant"), ("in der Küche", "in the kitchen"), ("zu Hause", "at home"),
      ("im Garten", "in the garden"), ("in der Schule", "at school"), ("im Büro", "at the office"))),
)
_PLACES = (("im Park", "in the park"), ("im Garten", "in the garden"), ("in der Küche", "in the kitchen"),
           ("in der Schule", "at school"), ("im Büro", "at the office"), ("am Bahnhof", "at the station"),
           ("im Supermarkt", "at the supermarket"), ("im Restaurant", "in the restaurant"), ("zu Hause", "at home"),
           ("in der Stadt", "in town"), ("im Hotel", "at the hotel"), ("auf dem Markt", "at the market"),
           ("in der Bibliothek", "in the library"), ("im Kino", "at the cinema"), ("bei meiner Tante", "at my aunt's"),
           ("CITY", "CITY"))
_TR_CITIES = (("Berlin", "Berlin"), ("Hamburg", "Hamburg"), ("München", "Munich"), ("Köln", "Cologne"),
              ("Wien", "Vienna"), ("Zürich", "Zurich"), ("Frankfurt", "Frankfurt"), ("Dresden", "Dresden"),
              ("Leipzig", "Leipzig"), ("Bremen", "Bremen"), ("Paris", "Paris"), ("London", "London"),
              ("Rom", "Rome"), ("Prag", "Prague"))
_FIXED_OBJ = (
    ("spielen", ("play", "plays", "played"), (("Fußball", "football"), ("Tennis", "tennis"), ("Schach", "chess"),
                                             ("Gitarre", "the guitar"), ("Karten", "cards"), ("Klavier", "the piano"))),
    ("lernen", ("learn", "learns", "learned"), (("Deutsch", "German"), ("Englisch", "English"), ("Französisch", "French"),
                                                ("Mathe", "maths"), ("Spanisch", "Spanish"), ("Geschichte", "history"))),
)
_MODALS = (
    ("können", "kann,kannst,kann,können,könnt,können".split(","), ("can", "can")),
    ("wollen", "will,willst,will,wollen,wollt,wollen".split(","), ("want to", "wants to")),
    ("müssen", "muss,musst,muss,müssen,müsst,müssen".split(","), ("have to", "has to")),
    ("möchten", "möchte,möchtest,möchte,möchten,möchtet,möchten".split(","), ("would like to", "would like to")),
)
_SEIN = ("bin", "bist", "ist", "sind", "seid", "sind")
_WAR = ("war", "warst", "war", "waren", "wart", "waren")
_HABEN = ("habe", "hast", "hat", "haben", "habt", "haben")
_BE = ("am", "are", "is", "are", "are", "are")
_WAS = ("was", "were", "was", "were", "were", "were")
_PRONOUNS = (("ich", "I", 0, "m"), ("du", "you", 1, "m"), ("er", "he", 2, "m"), ("sie", "she", 2, "f"),
             ("wir", "we", 3, "m"), ("ihr", "you", 4, "m"), ("sie", "they", 5, "m"))
_DE_NAMES = (("Anna", "f"), ("Lukas", "m"), ("Maria", "f"), ("Paul", "m"), ("Lena", "f"), ("Jonas", "m"),
             ("Sophie", "f"), ("Felix", "m"), ("Laura", "f"), ("Tim", "m"), ("Julia", "f"), ("Max", "m"),
             ("Emma", "f"), ("Leon", "m"), ("Marie", "f"), ("Ben", "m"), ("Hannah", "f"), ("Jan", "m"))
_POSS = (("mein", "my"), ("dein", "your"), ("sein", "his"), ("ihr", "her"), ("unser", "our"))
_DEF = {"nom": {"m": "der", "f": "die", "n": "das"}, "acc": {"m": "den", "f": "die", "n": "das"}}
_SAY = (("sagen", _reg_de("sag"), ("say", "says")), ("glauben", _reg_de("glaub"), ("believe", "believes")),
        ("denken", _reg_de("denk"), ("think", "thinks")), ("hoffen", _reg_de("hoff"), ("hope", "hopes")),
        ("wissen", "weiß,weißt,weiß,wissen,wisst,wissen".split(","), ("know", "knows")))
_DE_DAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
_DE_MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
              "November", "Dezember")
_ADVS = (("sehr", "very"), ("ziemlich", "quite"), ("zu", "too"), ("nicht", "not"), ("", ""), ("", ""), ("", ""))


def _ein(base: str, case: str, g: str) -> str:
    if g == "f":
        return base + "e"
    if g == "m" and case == "acc":
        return base + "en"
    return base


def _adj_end(det: str, case: str, g: str, plural: bool) -> str:
    if plural:
        return "e" if det in ("none", "num") else "en"
    if det in ("def",):
        return "en" if (case == "acc" and g == "m") else "e"
    if g == "m":
        return "er" if case == "nom" else "en"
    if g == "f":
        return "e"
    return "es"


def _np(rng: random.Random, noun: _N, case: str, det: str, adj_p: float = 0.3, num: int = 0) -> Tuple[str, str]:
    """German/English noun phrase.  det in def|indef|poss|kein|none|num|defpl."""
    if noun.mass and det in ("indef", "num", "defpl"):
        det = "none"
    if noun.mass and det == "kein":
        det = "kein"
    plural = det in ("num", "defpl")
    adj = None
    cands = _ADJ_BY_CLS.get(noun.cls)
    if cands and rng.random() < adj_p:
        adj = rng.choice(cands)
    if plural:
        n_de, n_en = noun.pl, noun.en_pl
    else:
        n_de = noun.acc if case == "acc" else noun.de
        n_en = noun.en
    a_de = a_en = ""
    if adj:
        a_de = adj[1] + _adj_end(det if det in ("def", "defpl", "none", "num") else "ein", case, noun.g, plural)
        a_en = adj[2]
    en_core = (a_en + " " + n_en).strip()
    if det == "def":
        d_de, d_en = _DEF[case][noun.g], "the"
    elif det == "defpl":
        d_de, d_en = "die", "the"
    elif det == "indef":
        d_de, d_en = _ein("ein", case, noun.g), _a(en_core).split(" ")[0]
    elif det == "kein":
        d_de = _ein("kein", case, noun.g)
        d_en = "" if noun.mass else _a(en_core).split(" ")[0]
    elif det == "poss":
        p_de, p_en = rng.choice(_POSS)
        d_de, d_en = _ein(p_de, case, noun.g), p_en
    elif det == "num":
        d_de = d_en = str(num)
    else:
        d_de = d_en = ""
    de = " ".join(x for x in (d_de, a_de, n_de) if x)
    en = " ".join(x for x in (d_en, en_core) if x)
    return de, en


def _time_expr(rng: random.Random) -> Tuple[str, str, str]:
    r = rng.randrange(15)
    if r == 0:
        return "heute", "today", "pres"
    if r == 1:
        return "morgen", "tomorrow", "fut"
    if r == 2:
        return "gestern", "yesterday", "past"
    if r == 3:
        i = rng.randrange(7)
        return f"am {_DE_DAYS[i]}", f"on {_DAYS[i]}", "pres"
    if r == 4:
        return "am Wochenende", "at the weekend", "pres"
    if r == 5:
        return "jeden Tag", "every day", "pres"
    if r == 6:
        h = rng.randint(6, 22)
        m = rng.choice(("", ":15", ":30", ":45"))
        return (f"um {h}{m} Uhr", f"at {h} o'clock" if (not m and h <= 12) else f"at {h}{m or ':00'}", "pres")
    if r == 7:
        i = rng.randrange(12)
        return f"im {_DE_MONTHS[i]}", f"in {_MONTHS[i]}", "pres"
    if r == 8:
        i, d = rng.randrange(12), rng.randint(1, 28)
        return f"am {d}. {_DE_MONTHS[i]}", f"on {d} {_MONTHS[i]}", "pres"
    if r == 9:
        return "heute Abend", "this evening", "fut"
    if r == 10:
        return "nächste Woche", "next week", "fut"
    if r == 11:
        return "letzte Woche", "last week", "past"
    if r == 12:
        i = rng.randrange(7)
        return f"letzten {_DE_DAYS[i]}", f"last {_DAYS[i]}", "past"
    if r == 13:
        n = rng.randint(2, 12)
        return f"vor {n} Tagen", f"{n} days ago", "past"
    i = rng.randrange(7)
    return f"jeden {_DE_DAYS[i]}", f"every {_DAYS[i]}", "pres"


def _subject(rng: random.Random, allow_animal: bool = True) -> dict:
    r = rng.random()
    if r < 0.45:
        de, en, p, g = rng.choice(_PRONOUNS)
        return {"de": de, "en": en, "p": p, "pron": True, "g": g, "cref": (de, en), "cls": "person"}
    if r < 0.7:
        name, g = rng.choice(_DE_NAMES)
        return {"de": name, "en": name, "p": 2, "pron": False, "g": g,
                "cref": ("er", "he") if g == "m" else ("sie", "she"), "cls": "person"}
    cls = "animal" if (allow_animal and rng.random() < 0.3) else "person"
    noun = rng.choice(_NOUNS_BY_CLS[cls])
    if rng.random() < 0.2:
        de, en = _np(rng, noun, "nom", "defpl", 0.25)
        return {"de": de, "en": en, "p": 5, "pron": False, "g": "pl", "cref": ("sie", "they"), "cls": cls}
    de, en = _np(rng, noun, "nom", rng.choice(("def", "def", "poss")), 0.25)
    if cls == "person" and noun.g != "n":
        cref = ("er", "he") if noun.g == "m" else ("sie", "she")
    else:
        cref = None
    return {"de": de, "en": en, "p": 2, "pron": False, "g": noun.g, "cref": cref, "cls": cls}


def _city(rng) -> Tuple[str, str]:
    return rng.choice(_TR_CITIES)


def _loc_fix(rng, pair: Tuple[str, str], motion: bool) -> Tuple[str, str]:
    if pair[0] != "CITY":
        return pair
    de, en = _city(rng)
    return (f"nach {de}", f"to {en}") if motion else (f"in {de}", f"in {en}")


def _clause(rng: random.Random, subj: Optional[dict] = None, allow_time: bool = True, tense_ok=("pres", "fut", "past"),
            allow_modal: bool = True, allow_neg: bool = True) -> dict:
    """Build an abstract clause that can be realised as main clause, subordinate clause or question."""
    kind = _wchoice(rng, ("trans", "cop", "motion", "locative", "fixed"), (55, 12, 14, 10, 9))
    subj = subj or _subject(rng, allow_animal=kind in ("trans", "cop"))
    cl = {"subj": subj, "time": None, "tense": "pres", "kind": "verb", "modal": None, "neg": False,
          "obj": None, "loc": None, "nicht": None, "locative": False, "motion": False, "count": None}
    for _ in range(10):
        t = _time_expr(rng) if (allow_time and rng.random() < 0.45) else None
        tense = t[2] if t else _wchoice(rng, ("pres", "past"), (75, 25))
        if tense in tense_ok:
            break
    else:
        t, tense = None, "pres"
    cl["time"], cl["tense"] = t, tense
    if kind == "trans":
        v = rng.choice(_ANIMAL_VERBS if subj["cls"] == "animal" else _VERBS)
        cl["verb"] = (v.pres, v.pp, v.aux, (v.en, v.en3, v.enp), v.inf)
        noun = rng.choice(v.objs)
        r = rng.random()
        if allow_neg and r < 0.12 and not (noun.cls == "person"):
            det = "kein"
            cl["neg"] = True
        elif r < 0.4:
            det = "def"
        elif r < 0.7:
            det = "indef"
        elif r < 0.82:
            det = "poss"
        else:
            det = "num"
        num = rng.randint(2, 20) if det == "num" else 0
        cl["obj"] = _np(rng, noun, "acc", det, 0.35, num)
        if det == "num" and not noun.mass:
            cl["count"] = (noun, num, cl["obj"])
        if allow_neg and det == "def" and rng.random() < 0.1:
            cl["neg"], cl["nicht"] = True, "after_obj"
        elif rng.random() < 0.2:
            cl["loc"] = _loc_fix(rng, rng.choice(_PLACES), False)
            cl["locative"] = True
    elif kind == "cop":
        cl["kind"] = "cop"
        if rng.random() < 0.12:
            cl["subj"] = subj = {"de": "das Wetter", "en": "the weather", "p": 2, "pron": False, "g": "n",
                                 "cref": None, "cls": "weather"}
            adj = rng.choice(_ADJ_BY_CLS["weather"])
        else:
            adj = rng.choice(_ADJ_BY_CLS.get(subj["cls"], _ADJ_BY_CLS["person"]))
        adv_de, adv_en = rng.choice(_ADVS)
        if adv_de == "nicht":
            if not allow_neg:
                adv_de, adv_en = "", ""
            else:
                cl["neg"] = True
                cl["nicht"] = "before_loc"
                adv_de, adv_en = "", ""
        cl["loc"] = ((adv_de + " " + adj[0]).strip(), (adv_en + " " + adj[2]).strip())
        cl["verb"] = None
        if cl["tense"] == "past" and cl["time"] is None and rng.random() < 0.5:
            cl["tense"] = "pres"
    elif kind == "motion":
        inf, pres, pp, en, dests = rng.choice(_MOTION)
        cl["verb"] = (pres, pp, "s", en, inf)
        cl["loc"] = _loc_fix(rng, rng.choice(dests), True)
        cl["motion"] = True
        if allow_neg and rng.random() < 0.08:
            cl["neg"], cl["nicht"] = True, "before_loc"
    elif kind == "locative":
        inf, pres, pp, en, places = rng.choice(_LOCATIVE)
        cl["verb"] = (pres, pp, "h", en, inf)
        if inf == "warten":
            noun = rng.choice(_NOUNS_BY_CLS["person"] + [_NOUN_BY_DE[x] for x in ("Bus", "Zug", "Taxi", "Paket")])
            de, en_np = _np(rng, noun, "acc", rng.choice(("def", "poss")), 0.2)
            cl["loc"] = (f"auf {de}", f"for {en_np}")
        else:
            cl["loc"] = _loc_fix(rng, rng.choice(places or _PLACES), False)
            cl["locative"] = True
    else:
        inf, en, objs = rng.choice(_FIXED_OBJ)
        de_o, en_o = rng.choice(objs)
        cl["verb"] = (_reg_de(inf[:-2]), "ge" + inf[:-2] + "t", "h", en, inf)
        cl["obj"] = (de_o, en_o)
        if rng.random() < 0.3:
            cl["loc"] = _loc_fix(rng, rng.choice(_PLACES), False)
            cl["locative"] = True
    if (allow_modal and cl["kind"] == "verb" and not cl["neg"] and cl["tense"] != "past" and rng.random() < 0.2):
        cl["modal"] = rng.choice(_MODALS)
    return cl


def _de_fin(cl: dict) -> Tuple[str, str]:
    p = cl["subj"]["p"]
    if cl["kind"] == "cop":
        return (_WAR[p] if cl["tense"] == "past" else _SEIN[p]), ""
    pres, pp, aux, _en, inf = cl["verb"]
    if cl["modal"]:
        return cl["modal"][1][p], inf
    if cl["tense"] == "past":
        return (_HABEN[p] if aux == "h" else _SEIN[p]), pp
    return pres[p], ""


def _de_mid(cl: dict, drop_obj=False, drop_loc=False) -> List[str]:
    mid = []
    if cl["obj"] and not drop_obj:
        mid.append(cl["obj"][0])
    if cl["nicht"] == "after_obj":
        mid.append("nicht")
    if cl["nicht"] == "before_loc":
        mid.append("nicht")
    if cl["loc"] and not drop_loc:
        mid.append(cl["loc"][0])
    return mid


def _de_realise(cl: dict, mode: str, conj: str = "") -> str:
    fin, nonfin = _de_fin(cl)
    subj = cl["subj"]["de"]
    time = [cl["time"][0]] if cl["time"] else []
    mid = _de_mid(cl)
    tail = [nonfin] if nonfin else []
    if mode == "main":
        words = [subj, fin] + time + mid + tail
    elif mode == "tfront":
        words = time + [fin, subj] + mid + tail
    elif mode == "inv":
        words = [fin, subj] + time + mid + tail
    elif mode == "sub":
        words = [conj, subj] + time + mid + tail + [fin]
    elif mode == "yn":
        words = [fin, subj] + time + mid + tail
    else:
        raise ValueError(mode)
    return " ".join(w for w in words if w)


def _en_vp(cl: dict, question: bool = False) -> Tuple[str, str]:
    """Return (auxiliary-for-question, rest) or ("", full verb phrase)."""
    p = cl["subj"]["p"]
    third = p == 2
    tense = cl["tense"]
    if cl["kind"] == "cop":
        if tense == "fut":
            return ("will", "be" + (" not" if cl["neg"] else "")) if question else ("", "will not be" if cl["neg"] else "will be")
        form = (_WAS if tense == "past" else _BE)[p]
        if question:
            return form, "not" if cl["neg"] else ""
        return "", form + (" not" if cl["neg"] else "")
    base, s3, past = cl["verb"][3]
    if cl["modal"]:
        m = cl["modal"][2][1 if third else 0]
        return "", f"{m} {base}"
    if tense == "fut":
        if question:
            return "will", base
        return "", ("will not " if cl["neg"] else "will ") + base
    if tense == "past":
        if question:
            return "did", base
        return "", ("did not " + base) if cl["neg"] else past
    do = "does" if third else "do"
    if question:
        return do, base
    if cl["neg"]:
        return "", f"{do} not {base}"
    return "", s3 if third else base


def _en_realise(cl: dict, mode: str) -> str:
    subj = cl["subj"]["en"]
    time = cl["time"][1] if cl["time"] else ""
    obj = cl["obj"][1] if cl["obj"] else ""
    loc = cl["loc"][1] if cl["loc"] else ""
    if mode == "yn":
        aux, rest = _en_vp(cl, question=True)
        words = [aux, subj, rest, obj, loc, time]
    else:
        _, vp = _en_vp(cl)
        if mode == "tfront":
            words = [time, subj, vp, obj, loc]
        else:
            words = [subj, vp, obj, loc, time]
    return " ".join(w for w in words if w)


def _reason(rng: random.Random, subj: dict) -> Tuple[str, str]:
    """Subordinate 'weil' clause (German without conjunction, English)."""
    cref = subj.get("cref")
    if cref and rng.random() < 0.5:
        de_p, en_p = cref
        if subj["pron"]:
            p = subj["p"]
        else:
            p = 5 if de_p == "sie" and en_p == "they" else 2
        third = p == 2
        r = rng.randrange(5 if p <= 2 else 4)
        poss = {"I": "my", "you": "your", "he": "his", "she": "her", "we": "our", "they": "their"}[en_p]
        if r == 0:
            return f"{de_p} keine Zeit {_HABEN[p]}", f"{en_p} {'has' if third else 'have'} no time"
        if r == 1:
            return f"{de_p} müde {_SEIN[p]}", f"{en_p} {_BE[p]} tired"
        if r == 2:
            return f"{de_p} Hunger {_HABEN[p]}", f"{en_p} {_BE[p]} hungry"
        if r == 3:
            return f"{de_p} krank {_SEIN[p]}", f"{en_p} {_BE[p]} ill"
        return f"{de_p} Geburtstag {_HABEN[p]}", f"it is {poss} birthday"
    r = rng.random()
    if r < 0.15:
        return "es regnet", "it is raining"
    if r < 0.25:
        return "das Wetter schön ist", "the weather is nice"
    if r < 0.3:
        return "der Bus zu spät kommt", "the bus is late"
    cl = _clause(rng, allow_modal=True)
    return _de_realise(cl, "sub", ""), _en_realise(cl, "main")


def _tr_main(rng: random.Random, allow_tfront: bool = True, **kw) -> Tuple[str, str, dict]:
    cl = _clause(rng, **kw)
    if allow_tfront and cl["time"] and rng.random() < 0.45:
        return _de_realise(cl, "tfront"), _en_realise(cl, "tfront"), cl
    return _de_realise(cl, "main"), _en_realise(cl, "main"), cl


def _tr_question(rng: random.Random) -> Tuple[str, str]:
    cl = _clause(rng, allow_modal=False, allow_neg=False)
    fin, nonfin = _de_fin(cl)
    subj_de = cl["subj"]["de"]
    time_de = [cl["time"][0]] if cl["time"] else []
    tail = [nonfin] if nonfin else []
    r = rng.random()
    aux, rest = _en_vp(cl, question=True)
    subj_en = cl["subj"]["en"]
    time_en = cl["time"][1] if cl["time"] else ""
    if cl["kind"] == "verb" and not cl["neg"] and cl["count"] and r < 0.5:
        noun, num, _ = cl["count"]
        de = " ".join(w for w in ["wie viele", noun.pl, fin, subj_de] + time_de + _de_mid(cl, drop_obj=True) + tail if w)
        en = " ".join(w for w in ["how many", noun.en_pl, aux, subj_en, rest, cl["loc"][1] if cl["loc"] else "", time_en] if w)
        return de, en
    if cl["kind"] == "verb" and not cl["neg"] and cl["obj"] and cl["verb"][4] not in ("spielen", "lernen") and r < 0.4:
        de = " ".join(w for w in ["was", fin, subj_de] + time_de + _de_mid(cl, drop_obj=True) + tail if w)
        en = " ".join(w for w in ["what", aux, subj_en, rest, cl["loc"][1] if cl["loc"] else "", time_en] if w)
        return de, en
    if cl["kind"] == "verb" and cl["locative"] and not cl["neg"] and r < 0.6:
        de = " ".join(w for w in ["wo", fin, subj_de] + time_de + _de_mid(cl, drop_loc=True) + tail if w)
        en = " ".join(w for w in ["where", aux, subj_en, rest, cl["obj"][1] if cl["obj"] else "", time_en] if w)
        return de, en
    if cl["kind"] == "verb" and cl["motion"] and not cl["neg"] and r < 0.7:
        de = " ".join(w for w in ["wohin", fin, subj_de] + time_de + tail if w)
        en = " ".join(w for w in ["where", aux, subj_en, rest, time_en] if w)
        return de, en
    if cl["kind"] == "verb" and cl["time"] is None and r < 0.8:
        de = " ".join(w for w in ["wann", fin, subj_de] + _de_mid(cl) + tail if w)
        en = " ".join(w for w in ["when", aux, subj_en, rest, cl["obj"][1] if cl["obj"] else "",
                                  cl["loc"][1] if cl["loc"] else ""] if w)
        return de, en
    return _de_realise(cl, "yn"), _en_realise(cl, "yn")


def _fix_case(de: str, en: str, qmark: bool) -> Tuple[str, str]:
    de = de.replace(" ,", ",")
    en = en.replace(" ,", ",")
    end = "?" if qmark else "."
    return _cap(de) + end, _cap(en) + end


def _one_translation(rng: random.Random) -> Tuple[str, str]:
    r = rng.random()
    if r < 0.32:
        de, en, _ = _tr_main(rng)
        return _fix_case(de, en, False)
    if r < 0.47:
        de, en = _tr_question(rng)
        return _fix_case(de, en, True)
    if r < 0.62:
        de, en, cl = _tr_main(rng)
        rde, ren = _reason(rng, cl["subj"])
        return _fix_case(f"{de}, weil {rde}", f"{en} because {ren}", False)
    if r < 0.72:
        speakers = [("ich", "I", 0), ("wir", "we", 3), ("er", "he", 2), ("sie", "she", 2)] + [(n, n, 2) for n, _ in _DE_NAMES]
        sde, sen, p = rng.choice(speakers)
        inf, pres, en_forms = rng.choice(_SAY)
        cl = _clause(rng)
        de = f"{sde} {pres[p]}, dass {_de_realise(cl, 'sub', '')}"
        en = f"{sen} {en_forms[1] if p == 2 else en_forms[0]} that {_en_realise(cl, 'main')}"
        return _fix_case(de, en, False)
    if r < 0.82:
        sub = _clause(rng, tense_ok=("pres",), allow_modal=False)
        main = _clause(rng)
        de = f"wenn {_de_realise(sub, 'sub', '')}, {_de_realise(main, 'inv')}"
        en = f"if {_en_realise(sub, 'main')}, {_en_realise(main, 'main')}"
        return _fix_case(de, en, False)
    if r < 0.92:
        d1, e1, _ = _tr_main(rng)
        d2, e2, _ = _tr_main(rng, allow_tfront=False)
        if rng.random() < 0.6:
            return _fix_case(f"{d1} und {d2}", f"{e1} and {e2}", False)
        return _fix_case(f"{d1}, aber {d2}", f"{e1}, but {e2}", False)
    # simple copula / short sentence
    cl = _clause(rng, allow_modal=False)
    return _fix_case(_de_realise(cl, "main"), _en_realise(cl, "main"), False)


def gen_translation(n: int, seed: int) -> List[dict]:
    """IWSLT-like German->English pairs ``{"id", "translation": {"de", "en"}}`` from a small grammar."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        de, en = _one_translation(rng)
        if 4 <= len(de.split()) <= 25:
            out.append({"id": _uid("iwslt", seed, len(out), 16), "translation": {"de": de, "en": en}})
    return out


# ===========================================================================
# I/O and dataset building
# ===========================================================================

def write_jsonl(records: Sequence[dict], path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def write_json(obj, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


_SPLIT_OFFSET = {"train": 1, "validation": 2, "test": 3}
_TASK_OFFSET = {"dialogsum": 0, "news": 10, "squad": 20, "squad_v2": 30, "iwslt_de_en": 40}


def _split_seed(seed: int, task: str, split: str) -> int:
    return seed * 1000 + _TASK_OFFSET[task] + _SPLIT_OFFSET[split]


def _unique(gen: Callable[[int, int], List[dict]], n: int, seed: int, key: Callable[[dict], str], seen: set) -> List[dict]:
    """First ``n`` records of ``gen(., seed)`` whose key is not in ``seen`` (nor duplicated); updates ``seen``."""
    extra = max(10, n // 10)
    while True:
        recs = gen(n + extra, seed)
        out, local = [], set()
        for r in recs:
            k = key(r)
            if k in seen or k in local:
                continue
            local.add(k)
            out.append(r)
            if len(out) == n:
                break
        if len(out) == n or extra > 20 * n + 1000:
            seen |= local
            return out
        extra *= 4


def _unique_squad(n: int, seed: int, version_2: bool, seen: set) -> dict:
    extra = max(20, n // 5)
    while True:
        sq = gen_squad(n + extra, seed, version_2)
        data, total, local = [], 0, set()
        for art in sq["data"]:
            pars = []
            for par in art["paragraphs"]:
                if total >= n or par["context"] in seen or par["context"] in local:
                    continue
                qas = par["qas"][: n - total]
                if not qas:
                    continue
                local.add(par["context"])
                total += len(qas)
                pars.append({"context": par["context"], "qas": qas})
            if pars:
                data.append({"title": art["title"], "paragraphs": pars})
        if total >= n or extra > 20 * n + 1000:
            seen |= local
            return {"version": sq["version"], "data": data}
        extra *= 4


def make_all(out_dir: str, n_train: int = 2000, n_val: int = 200, n_test: int = 200, seed: int = 0) -> Dict[str, str]:
    """Write all synthetic datasets under ``out_dir``; returns ``{"<task>/<split>": path}``.

    Splits use different seeds and are de-duplicated against each other (train first).
    """
    paths: Dict[str, str] = {}
    sizes = {"train": n_train, "validation": n_val, "test": n_test}
    list_tasks = (
        ("dialogsum", gen_dialogsum, lambda r: r["dialogue"]),
        ("news", gen_news, lambda r: r["article"]),
        ("iwslt_de_en", gen_translation, lambda r: r["translation"]["de"]),
    )
    for task, gen, key in list_tasks:
        seen: set = set()
        for split in ("train", "validation", "test"):
            recs = _unique(gen, sizes[split], _split_seed(seed, task, split), key, seen)
            paths[f"{task}/{split}"] = write_jsonl(recs, os.path.join(out_dir, task, f"{split}.jsonl"))
    for task, v2 in (("squad", False), ("squad_v2", True)):
        seen = set()
        for split in ("train", "validation"):
            sq = _unique_squad(sizes[split], _split_seed(seed, task, split), v2, seen)
            paths[f"{task}/{split}"] = write_json(sq, os.path.join(out_dir, task, f"{split}.json"))
    return paths


def corpus_text(seed: int = 0, n: int = 2000) -> Iterator[str]:
    """Yield text lines from all generators (for tokenizer training); ``n`` examples per task."""
    for r in gen_dialogsum(n, seed):
        yield from r["dialogue"].split("\n")
        yield r["summary"]
    for r in gen_news(max(1, n // 2), seed + 1):
        yield r["article"]
        yield from r["highlights"].split("\n")
    for version_2 in (False, True):
        sq = gen_squad(n, seed + 2 + int(version_2), version_2)
        for art in sq["data"]:
            for par in art["paragraphs"]:
                yield par["context"]
                for qa in par["qas"]:
                    yield qa["question"]
    for r in gen_translation(n, seed + 4):
        yield r["translation"]["de"]
        yield r["translation"]["en"]
