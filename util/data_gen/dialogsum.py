"""Dialogue summarisation (SAMSum-like): ``{"id", "dialogue", "summary"}``."""

from __future__ import annotations

import random
from typing import List, Tuple

from .vocab import (_ALL_NAMES, _CITIES, _DAYS, _GENDER, _NUM_WORDS, _PR, _SURNAMES, _cap, _clock, _clock_hm,
                    _date, _date_pair, _fmt_time, _uid, _wchoice)

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
