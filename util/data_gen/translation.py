"""German -> English pairs (IWSLT-like) from a small bilingual grammar."""

from __future__ import annotations

import random
import re
from typing import Dict, List, Optional, Tuple

from .vocab import _DAYS, _MONTHS, _a, _cap, _uid, _wchoice

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


_WORD_RE = re.compile(r"[^\W\d]+")


def _words(s: str) -> set:
    return set(_WORD_RE.findall(s.lower()))


_CORE = {}


def core_lexicon(k: int) -> frozenset:
    """The ``k`` most frequent German words of the grammar (a fixed sample of 40,000 pairs; names, cities and
    numbers included as they come)."""
    if k not in _CORE:
        rng, counts = random.Random(12345), {}
        for _ in range(40000):
            for w in _WORD_RE.findall(_one_translation(rng)[0].lower()):
                counts[w] = counts.get(w, 0) + 1
        _CORE[k] = frozenset(sorted(counts, key=lambda w: (-counts[w], w))[:k])
    return _CORE[k]


def gen_translation(n: int, seed: int, lexicon: Optional[int] = None) -> List[dict]:
    """IWSLT-like German->English pairs ``{"id", "translation": {"de", "en"}}`` from a small grammar.

    ``lexicon=k`` keeps only sentences whose German words are all among the grammar's ``k`` most frequent
    (:func:`core_lexicon`): the same grammar over a smaller vocabulary, so that a small model trained briefly
    sees every word pair many times (the full grammar has ~900 German word types; half appear < 15 times in
    4,000 pairs).
    """
    rng = random.Random(seed)
    core = core_lexicon(lexicon) if lexicon else None
    out, draws = [], 0
    while len(out) < n:
        de, en = _one_translation(rng)
        draws += 1
        if 4 <= len(de.split()) <= 25 and (core is None or _words(de) <= core):
            out.append({"id": _uid("iwslt", seed, len(out), 16), "translation": {"de": de, "en": en}})
        elif draws >= 100_000 and len(out) * 10_000 < draws:  # 80 words keep 1 in 220 sentences; 50 words none
            raise ValueError(f"lexicon={lexicon}: {len(out)} of {draws} generated sentences use only those German "
                             f"words; use a larger lexicon (100 keeps 1 sentence in 90)")
    return out
