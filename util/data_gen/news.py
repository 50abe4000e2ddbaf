"""News summarisation (CNN/DM-like): ``{"id", "article", "highlights"}``."""

from __future__ import annotations

import random
from typing import List, Tuple

from .vocab import _ALL_NAMES, _DAYS, _MONTHS, _SURNAMES, _commas, _ordinal, _uid
from .dialogsum import _STREETS

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
          "Rival firms reported mixed results earlier this month."]
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
