"""Extractive QA: the SQuAD v1.1 / v2.0 JSON structure."""

from __future__ import annotations

import random
import re
from typing import Dict, List, Optional, Tuple

from .vocab import _ALL_NAMES, _GENDER, _MONTHS, _PR, _SURNAMES, _cap, _commas, _uid
from .news import _full, _money

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
                    distractors=(), max_words=None):
    """Build one context; returns (context, qas)."""
    sentences = []        # (text, spans or None, questions or None)
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
    if max_words:
        # A context longer than the model's window is split into windows, and a window without the answer can
        # win the example's answer (issue 18); dropping sentences keeps each context in one window. Filler and
        # distractors go first, then facts from the end (never the first, which names the entity); a dropped
        # fact is one the context lacks, which v2 may ask about. No draw here, so max_words=None is unchanged.
        missing_facts = list(missing_facts)
        while sum(len(t.split()) for t, _s, _q in sentences) > max_words and len(sentences) > 1:
            extra = [i for i, (_t, sp, _q) in enumerate(sentences) if sp is None]
            _t, _sp, qs = sentences.pop(extra[-1] if extra else -1)
            if qs:
                missing_facts.append((None, qs))
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


MIN_MAX_WORDS = 20  # the longest first sentence has 19 words (max_words=1 over 18,000 generated questions)


def gen_squad(n: int, seed: int, version_2: bool = False, max_words: Optional[int] = None) -> dict:
    """SQuAD-format JSON with ``n`` questions in total (about 1/3 unanswerable when ``version_2``).

    ``max_words``: no context longer than this many words (sentences are left out, see ``_make_paragraph``);
    ``None`` keeps contexts of up to ~300 words.
    """
    if max_words is not None and max_words < MIN_MAX_WORDS:
        raise ValueError(f"max_words={max_words}: a context keeps its first sentence, which names its entity and runs "
                         f"to {MIN_MAX_WORDS - 1} words; use at least {MIN_MAX_WORDS}")
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
                                       dist, max_words)
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
