"""Another company's customer file (`kehu generate --style western`): Western given and family names, street
addresses with towns and UK-style postcodes, dates of birth, and for most people no mobile and no e-mail — with
several records of some people, each corrupted by a model of its own, independent of kehu's matcher, in the
style of FEBRL and GeCo (Christen et al.): keyboard typos, OCR-like and phonetic errors, swapped given and
family names, missing fields, nicknames and initials, swapped day and month, mistyped years, another address.

Deterministic from a seed. Records are pure data (``records``): written in bulk through kehu's one writer of
profiles and identities (``generate``, what the dedupe benchmark uses) or as a CSV file that `kehu import`
takes (``write_csv``). Each record carries its true person, so a matcher can be scored pairwise."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TextIO

from sqlalchemy import select

from kehu.cdp import normalise, writer
from kehu.cdp.models import Identity
from kehu.core.db import Database, EveryRow, utcnow
from kehu.core.errors import Conflict
from kehu.core.files import CsvStream
from kehu.tenancy.models import BusinessUnit

CHUNK = 10_000
DUPLICATE_SHARE = 0.3
MAX_COPIES = 6

# -- names ---------------------------------------------------------------------------------------------------------
# Most frequent first (England and Wales, people of all ages); weights fall off like a Zipf distribution.
MALE = ("David John Michael Paul Andrew Mark James Peter Robert Richard Stephen Christopher Ian Thomas Daniel "
        "Matthew Simon Anthony Kevin Gary Steven William Martin George Brian Alan Jonathan Neil Graham Colin Philip "
        "Adam Lee Kenneth Nicholas Benjamin Joseph Samuel Edward Jack Oliver Harry Charles Keith Jason Craig Darren "
        "Shaun Wayne Dean Carl Barry Stuart Roger Trevor Derek Raymond Ronald Frank Dennis Gordon Douglas Alexander "
        "Luke Ryan Scott Liam Nathan Jamie Joshua Patrick Francis Henry Frederick Arthur Albert Victor Leonard "
        "Ernest Harold Stanley Roy Eric Geoffrey Malcolm Terence Mohammed Jake Callum Kieran Aaron Connor Lewis "
        "Dylan Gareth Rhys Owen Gavin Russell Hugh Duncan Ross Glen Vincent Lawrence Jeremy Howard Clive").split()
FEMALE = ("Susan Sarah Elizabeth Margaret Mary Patricia Linda Karen Julie Helen Jennifer Caroline Claire Emma "
          "Nicola Rachel Louise Lisa Michelle Joanne Amanda Deborah Alison Jacqueline Angela Christine Catherine "
          "Katherine Jane Janet Ann Anne Barbara Jean Carol Diane Pauline Gillian Sandra Valerie Sharon Tracey Dawn "
          "Kelly Samantha Victoria Rebecca Laura Hannah Charlotte Sophie Emily Jessica Amy Lucy Chloe Megan Olivia "
          "Grace Ellie Holly Lauren Natalie Stephanie Kathleen Dorothy Joan Doris Irene Eileen Sheila Brenda Maureen "
          "Shirley Hazel Wendy Heather Fiona Lorraine Denise Teresa Rosemary Joyce Beverley Kim Zoe Abigail Georgia "
          "Jade Danielle Gemma Kirsty Leanne Natasha Fatima Ayesha Amelia Isabella Ruth Frances Elaine Alice Eleanor "
          "Jill Lynn Marion Sally Judith").split()
SURNAMES = ("Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson Thompson Wright "
            "Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood Turner Martin Cooper Hill "
            "Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen James Scott Phillips Watson Davis Parker "
            "Price Bennett Young Griffiths Mitchell Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy "
            "Miller Cox Richards Khan Marshall Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman "
            "Powell Webb Rogers Gray Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight "
            "Lloyd Butler Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher "
            "Walsh Kaur Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day Brooks "
            "West Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton O'Brien Watts Rose Booth Perry Ryan "
            "Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett Webster Hunter Gregory Carr Lowe "
            "Page Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland Hawkins Harding Porter Robertson Newton "
            "Oliver Reed Kennedy Williamson Bird Gardner Shah Dean Lane Cooke Bates Henderson Parry Burgess Bishop "
            "Walton Burns Nicholson Shepherd Ross Cross Long Freeman Warren Nicholls Hamilton Byrne Sutton McDonald "
            "Yates Hodgson Robson Curtis Hopkins O'Connor Harper Coleman Watkins Moss McCarthy Chambers O'Neill "
            "Griffin Sharp Hardy Wheeler Potter Osborne Johnston Gordon Doyle Wallace George Jordan Hutchinson Rowe "
            "Burke May Pritchard Gilbert Willis Higgins Read Miles Stevenson Stephenson Hammond Arnold Buckley Walters "
            "Hewitt Barber Nelson Slater Austin Sullivan Whitehead Mann Frost Lambert Stephens Blake Akhtar Lynch "
            "Goodwin Barton Woodward Thomson Cunningham Quinn Barnett Baxter Bibi Clayton Nash Greenwood Jennings "
            "Holt Kemp Poole Gallagher Bond Stokes Tucker Davidson Fowler Heath Norman Middleton Lawson Banks French "
            "Stanley Jarvis Gibbs Ferguson Hayward Carroll Douglas Dickinson Todd Barlow Peters Lucas Knowles Hartley "
            "Miah Simmons Morton Alexander Field Morrison Norris Townsend Preston Hancock Thornton Baldwin Burrows "
            "Briggs Storey Pope Rahman Farrell Dyer Hanson Mistry Schofield Fraser Finch").split()
# The long tail: a surname in three of four records is not among the few hundred above.
_HEADS = ("Ash Brad Whit Hal Pen Mor Stan Fair Chad Ren Gold Sher Wal Dun Kirk Brom Lang Thorn Hart Wex Cal Bran "
          "Hol Mar Ald Brig Car Dal Elm Fen Gar Hed Ing Kel Lin Mel Nor Ock Pil Rad Sal Tal Ux Ven Wick Yar Bur Clif "
          "Dray Ever Fal Gil Haw Mal Pel Rus Sedge Tur Wil Aber Bel Cran Dor Ed Fos").split()
_MIDDLES = ("", "", "", "er", "in", "ing", "ers", "ow", "en", "e")
_TAILS = ("ley ton wood ford field man well by worth stone ridge hurst croft shaw wick more den ham burn son ell "
          "ington "
          "dale ock bury lock brook combe cott ridge stead thwaite holm").split()
NICKNAMES = {
    "William": ("Bill", "Will", "Billy", "Liam"), "Robert": ("Bob", "Rob", "Bobby", "Robbie"),
    "Richard": ("Rick", "Dick", "Rich"), "James": ("Jim", "Jimmy", "Jamie"), "John": ("Jack", "Johnny"),
    "Michael": ("Mike", "Mick", "Micky"), "Thomas": ("Tom", "Tommy"), "Christopher": ("Chris", "Kit"),
    "Anthony": ("Tony",), "Andrew": ("Andy", "Drew"), "Stephen": ("Steve",), "Steven": ("Steve",),
    "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",), "Nicholas": ("Nick", "Nicky"), "Benjamin": ("Ben",),
    "Joseph": ("Joe",), "Samuel": ("Sam", "Sammy"), "Edward": ("Ed", "Eddie", "Ted", "Ned"),
    "Charles": ("Charlie", "Chuck"), "Alexander": ("Alex", "Sandy"), "Peter": ("Pete",), "David": ("Dave", "Davy"),
    "Kenneth": ("Ken", "Kenny"), "Frederick": ("Fred", "Freddie"), "Harold": ("Harry",), "Henry": ("Harry", "Hal"),
    "Raymond": ("Ray",), "Ronald": ("Ron", "Ronnie"), "Gerald": ("Gerry",), "Timothy": ("Tim",),
    "Philip": ("Phil",), "Patrick": ("Pat", "Paddy"), "Jonathan": ("Jon", "Jonny"), "Francis": ("Frank",),
    "Leonard": ("Len", "Lenny"), "Lawrence": ("Larry", "Laurie"), "Douglas": ("Doug",), "Terence": ("Terry",),
    "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty", "Eliza"), "Margaret": ("Maggie", "Peggy", "Meg", "Maggy"),
    "Katherine": ("Kate", "Kathy", "Katie"), "Catherine": ("Cathy", "Kate", "Cath"), "Jennifer": ("Jenny", "Jen"),
    "Patricia": ("Pat", "Trish", "Patty"), "Susan": ("Sue", "Susie"), "Deborah": ("Debbie", "Deb"),
    "Rebecca": ("Becky", "Becca"), "Victoria": ("Vicky", "Tori"), "Samantha": ("Sam", "Sammy"),
    "Jacqueline": ("Jackie",), "Christine": ("Chris", "Chrissie"), "Alexandra": ("Alex",), "Abigail": ("Abby",),
    "Nicola": ("Nicky",), "Amanda": ("Mandy",), "Dorothy": ("Dot", "Dolly"), "Eleanor": ("Ellie", "Nell"),
    "Barbara": ("Barbie", "Babs"), "Valerie": ("Val",), "Gillian": ("Gill", "Jill"), "Natasha": ("Tash",),
    "Frances": ("Fran",), "Judith": ("Judy",), "Joanne": ("Jo",), "Stephanie": ("Steph",), "Teresa": ("Terri",),
}

# -- places --------------------------------------------------------------------------------------------------------
# (town, county, postcode area, districts): bigger towns have more postcode districts and more customers.
TOWNS = [
    ("London", "Greater London", "SE", 28), ("Birmingham", "West Midlands", "B", 40),
    ("Manchester", "Greater Manchester", "M", 30), ("Leeds", "West Yorkshire", "LS", 28),
    ("Glasgow", "Lanarkshire", "G", 30), ("Sheffield", "South Yorkshire", "S", 20),
    ("Bradford", "West Yorkshire", "BD", 20), ("Liverpool", "Merseyside", "L", 30),
    ("Edinburgh", "Midlothian", "EH", 17), ("Bristol", "Avon", "BS", 16), ("Cardiff", "South Glamorgan", "CF", 14),
    ("Leicester", "Leicestershire", "LE", 10), ("Coventry", "West Midlands", "CV", 9),
    ("Nottingham", "Nottinghamshire", "NG", 11), ("Newcastle upon Tyne", "Tyne and Wear", "NE", 15),
    ("Hull", "East Yorkshire", "HU", 10), ("Plymouth", "Devon", "PL", 9), ("Stoke-on-Trent", "Staffordshire", "ST", 8),
    ("Wolverhampton", "West Midlands", "WV", 8), ("Derby", "Derbyshire", "DE", 8),
    ("Swansea", "West Glamorgan", "SA", 8),
    ("Southampton", "Hampshire", "SO", 9), ("Portsmouth", "Hampshire", "PO", 7), ("Reading", "Berkshire", "RG", 8),
    ("Aberdeen", "Aberdeenshire", "AB", 8), ("Norwich", "Norfolk", "NR", 7), ("Luton", "Bedfordshire", "LU", 5),
    ("Milton Keynes", "Buckinghamshire", "MK", 6), ("Northampton", "Northamptonshire", "NN", 6),
    ("Brighton", "East Sussex", "BN", 7), ("Bournemouth", "Dorset", "BH", 6), ("Sunderland", "Tyne and Wear", "SR", 6),
    ("Oxford", "Oxfordshire", "OX", 5), ("Cambridge", "Cambridgeshire", "CB", 5), ("York", "North Yorkshire", "YO", 5),
    ("Exeter", "Devon", "EX", 4), ("Gloucester", "Gloucestershire", "GL", 4), ("Bath", "Somerset", "BA", 3),
    ("Dundee", "Angus", "DD", 4), ("Preston", "Lancashire", "PR", 4), ("Blackpool", "Lancashire", "FY", 3),
    ("Bolton", "Greater Manchester", "BL", 4), ("Wigan", "Greater Manchester", "WN", 3),
    ("Huddersfield", "West Yorkshire", "HD", 4), ("Ipswich", "Suffolk", "IP", 4), ("Lincoln", "Lincolnshire", "LN", 3),
    ("Carlisle", "Cumbria", "CA", 3), ("Chester", "Cheshire", "CH", 4), ("Worcester", "Worcestershire", "WR", 3),
    ("Canterbury", "Kent", "CT", 3), ("Swindon", "Wiltshire", "SN", 4), ("Colchester", "Essex", "CO", 3),
    ("Inverness", "Highland", "IV", 2), ("Truro", "Cornwall", "TR", 2), ("Hereford", "Herefordshire", "HR", 2),
]
STREET_NAMES = ("High Church Station Park Victoria Green Manor Mill School Queens Kings New Grange Chapel Albert "
                "Richmond Alexandra York Windsor Main Springfield George Highfield Broadway Orchard Meadow "
                "Stanley North South West East Elm Oak Ash Beech Cedar Willow Chestnut Maple Birch Holly "
                "Hawthorn Rowan Heather Lime Poplar Sycamore Laurel Cherry Valley Hill Brook Forest Lake River "
                "Bridge Castle Abbey Priory Market Water Marsh Moor Field Common Farm Hall Lodge Cross Kingsway "
                "Princes Cromwell Nelson Wellington Clarence Cambridge Oxford Trinity Rectory Vicarage Mount "
                "Belmont Fairfield Woodland Riverside Hillside Lansdowne Grosvenor Warwick Stafford Denmark "
                "Shakespeare Milton Chaucer Tennyson Byron").split()
STREET_TYPES = (("Road", "Rd", 30), ("Street", "St", 25), ("Avenue", "Ave", 10), ("Lane", "Ln", 10),
                ("Close", "Cl", 6), ("Drive", "Dr", 6), ("Way", "Wy", 4), ("Crescent", "Cres", 4),
                ("Gardens", "Gdns", 3), ("Place", "Pl", 3), ("Terrace", "Terr", 3), ("Grove", "Gr", 3),
                ("Court", "Ct", 3))
STREETS_PER_DISTRICT = 60
MAIL_DOMAINS = ("gmail.com", "hotmail.co.uk", "yahoo.co.uk", "outlook.com", "btinternet.com", "icloud.com")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters a UK postcode's unit may use


def _zipf(n: int, s: float = 1.0) -> list[float]:
    return [1 / (rank + 1) ** s for rank in range(n)]


@dataclass(frozen=True)
class Street:
    name: str  # "Station"
    kind: int  # index into STREET_TYPES
    town: int  # index into TOWNS
    postcode: str  # "LS7 4QH"


def _streets() -> list[list[list[Street]]]:
    """The geography, the same for every seed: per town, per postcode district, its streets with their postcode."""
    rng = random.Random("kehu-western-streets")
    out = []
    for town_index, (_, _, area, districts) in enumerate(TOWNS):
        per_district = []
        for district in range(1, districts + 1):
            names = rng.sample(STREET_NAMES, min(STREETS_PER_DISTRICT, len(STREET_NAMES)))
            per_district.append([Street(name, rng.choices(range(len(STREET_TYPES)), [w for *_, w in STREET_TYPES])[0],
                                        town_index, f"{area}{district} {rng.randint(1, 9)}"
                                        f"{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}")
                                 for name in names])
        out.append(per_district)
    return out


def _tail_surnames() -> list[str]:
    rng = random.Random("kehu-western-surnames")
    names = sorted({f"{h}{m}{t}" for h, m, t in itertools.product(_HEADS, _MIDDLES, _TAILS)})
    rng.shuffle(names)
    return names


class _World:
    """Names and places with their weights, built once per process."""

    def __init__(self) -> None:
        self.streets = _streets()
        self.town_weights = [sum(1 for _ in districts) for districts in self.streets]
        self.male, self.male_w = MALE, list(itertools.accumulate(_zipf(len(MALE), 0.9)))
        self.female, self.female_w = FEMALE, list(itertools.accumulate(_zipf(len(FEMALE), 0.9)))
        tail = _tail_surnames()
        head_w = _zipf(len(SURNAMES), 0.7)
        # the named few hundred carry a quarter of the records, the tail the rest
        tail_zipf = _zipf(len(tail), 0.6)
        scale = 3 * sum(head_w) / sum(tail_zipf)
        tail_w = [w * scale for w in tail_zipf]
        self.surnames = SURNAMES + tail
        self.surname_w = list(itertools.accumulate(head_w + tail_w))

    def street(self, rng: random.Random) -> Street:
        town = rng.choices(range(len(TOWNS)), self.town_weights)[0]
        return rng.choice(rng.choice(self.streets[town]))


_world: _World | None = None


def world() -> _World:
    global _world
    if _world is None:
        _world = _World()
    return _world


# -- records -------------------------------------------------------------------------------------------------------
@dataclass
class Record:
    person: str  # who this really is: every record of one person carries the same
    record: int  # unique per record
    given: str | None
    family: str | None
    gender: str | None
    birthday: date | None
    address: str | None  # "12 Station Road"
    city: str | None
    county: str | None
    postcode: str | None
    mobile: str | None
    email: str | None
    customer_no: str
    corruptions: tuple[str, ...] = ()  # what the corruption model did to this record (empty: an original)

    @property
    def name(self) -> str | None:
        return " ".join(part for part in (self.given, self.family) if part) or None


def _mobile(seed: int, record: int) -> str:
    """A UK mobile (07700 … 07999), unique per record: its number in a bijection of the last eight digits."""
    return f"+447{7 + record % 3}{(record * 7919 + seed * 104729) % 10**8:08d}"


def _original(rng: random.Random, w: _World, seed: int, number: int, today: date) -> Record:
    gender = "male" if rng.random() < 0.5 else "female"
    names, weights = (w.male, w.male_w) if gender == "male" else (w.female, w.female_w)
    given = rng.choices(names, cum_weights=weights)[0]
    family = rng.choices(w.surnames, cum_weights=w.surname_w)[0]
    if rng.random() < 0.08:  # double-barrelled
        family = f"{family}-{rng.choices(w.surnames, cum_weights=w.surname_w)[0]}"
    birthday = today - timedelta(days=rng.randint(18 * 365, 88 * 365))
    street = w.street(rng)
    town, county, *_ = TOWNS[street.town]
    number_on_street = rng.choices((rng.randint(1, 30), rng.randint(1, 250)), (3, 1))[0]
    flat = f"Flat {rng.randint(1, 24)}, " if rng.random() < 0.07 else ""
    record = number * 8
    mobile = _mobile(seed, record) if rng.random() < 0.12 else None
    email = (f"{given.lower()}.{family.lower().replace(chr(39), '')}{number}@{rng.choice(MAIL_DOMAINS)}"
             if rng.random() < 0.1 else None)
    return Record(f"w{seed}-{number}", record, given, family, gender, birthday,
                  f"{flat}{number_on_street} {street.name} {STREET_TYPES[street.kind][0]}", town, county,
                  street.postcode, mobile, email, f"W{seed}-{record}")


# The corruption model: how often each thing happens to a duplicate (one to four of them per duplicate).
CORRUPTIONS: dict[str, float] = {
    "keyboard_typo": 20, "ocr_error": 7, "phonetic_error": 12, "names_swapped": 5, "nickname": 7, "initial": 4,
    "given_missing": 3, "family_missing": 2, "birthday_missing": 5, "address_missing": 4, "postcode_missing": 4,
    "city_missing": 3, "day_month_swapped": 5, "year_mistyped": 5, "day_mistyped": 4, "moved": 8,
    "postcode_typo": 4, "address_abbreviated": 5, "house_number_typo": 3,
}
KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS: dict[str, str] = {}
for _row_index, _row in enumerate(KEYBOARD):
    for _col, _key in enumerate(_row):
        _near = {_row[c] for c in (_col - 1, _col + 1) if 0 <= c < len(_row)}
        for _other in (_row_index - 1, _row_index + 1):
            if 0 <= _other < len(KEYBOARD):
                _near.update(KEYBOARD[_other][c] for c in (_col - 1, _col, _col + 1) if 0 <= c < len(KEYBOARD[_other]))
        _NEIGHBOURS[_key] = "".join(sorted(_near))
OCR = [("m", "rn"), ("rn", "m"), ("l", "1"), ("1", "l"), ("I", "l"), ("O", "0"), ("0", "O"), ("S", "5"), ("5", "S"),
       ("B", "8"), ("8", "B"), ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"), ("e", "c"), ("c", "e"), ("h", "b"),
       ("g", "q"), ("a", "o"), ("u", "v"), ("n", "h"), ("Z", "2"), ("G", "6"), ("i", "l")]
PHONETIC = [("ph", "f"), ("f", "ph"), ("ck", "k"), ("c", "k"), ("k", "c"), ("ie", "y"), ("y", "ie"), ("y", "i"),
            ("i", "y"), ("ee", "ea"), ("ea", "ee"), ("ou", "ow"), ("z", "s"), ("s", "z"), ("mac", "mc"), ("mc", "mac"),
            ("th", "t"), ("son", "sen"), ("ey", "y"), ("ai", "ay"), ("ay", "ai"), ("wr", "r"), ("kn", "n"),
            ("gh", ""), ("tt", "t"), ("ll", "l"), ("nn", "n"), ("rr", "r"), ("ss", "s"), ("t", "tt"), ("l", "ll"),
            ("n", "nn"), ("er", "a"), ("ine", "een"), ("ch", "tch"), ("x", "cks"), ("qu", "kw"), ("ei", "ie"),
            ("ie", "ei"), ("ph", "v"), ("our", "or")]


def keyboard_typo(rng: random.Random, text: str) -> str:
    """One slip of the finger: a neighbouring key instead, an extra one, a key missed or two keys swapped."""
    if len(text) < 2:
        return text
    i = rng.randrange(len(text))
    c = text[i]
    near = _NEIGHBOURS.get(c.lower(), "")
    kind = rng.choices(("substitute", "insert", "delete", "transpose"), (45, 20, 20, 15))[0]
    if kind == "substitute" and near:
        n = rng.choice(near)
        return text[:i] + (n.upper() if c.isupper() else n) + text[i + 1:]
    if kind == "insert" and near:
        return text[:i] + rng.choice(near) + text[i:]
    if kind == "transpose" and i < len(text) - 1 and text[i] != text[i + 1]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:i] + text[i + 1:]


def _replace_one(rng: random.Random, text: str, rules: list[tuple[str, str]]) -> str | None:
    places = [(i, old, new) for old, new in rules for i in range(len(text)) if text.startswith(old, i)]
    if not places:
        return None
    i, old, new = rng.choice(places)
    return text[:i] + new + text[i + len(old):]


def ocr_error(rng: random.Random, text: str) -> str:
    return _replace_one(rng, text, OCR) or keyboard_typo(rng, text)


def phonetic_error(rng: random.Random, text: str) -> str:
    """A name written as it sounds (Philips → Filips, Catherine → Katherine, Macdonald → Mcdonald)."""
    changed = _replace_one(rng, text.lower(), PHONETIC)
    if not changed or len(changed) < 2:
        return keyboard_typo(rng, text)
    return changed[0].upper() + changed[1:] if text[:1].isupper() else changed


TOWN_NAMES = [town for town, *_ in TOWNS]


def _moved(rng: random.Random, w: _World, record: Record) -> None:
    if record.city in TOWN_NAMES and rng.random() < 0.5:  # half move within their town
        street = rng.choice(rng.choice(w.streets[TOWN_NAMES.index(record.city)]))
    else:
        street = w.street(rng)
    record.address = f"{rng.randint(1, 120)} {street.name} {STREET_TYPES[street.kind][0]}"
    record.city, record.county, *_ = TOWNS[street.town]
    record.postcode = street.postcode


def _written(r: Record) -> tuple[Any, ...]:
    return r.given, r.family, r.birthday, r.address, r.postcode, r.city


def corrupt(rng: random.Random, w: _World, original: Record, variant: int, seed: int) -> Record:
    """A duplicate of ``original``: the same person written down again, with one to four corruptions."""
    record = Record(**{**vars(original), "record": original.record + variant,
                       "customer_no": f"{original.customer_no.rsplit('-', 1)[0]}-{original.record + variant}",
                       "mobile": None, "email": None})
    if original.mobile and rng.random() < 0.3:  # an old number
        record.mobile = _mobile(seed, record.record)
    if original.email and rng.random() < 0.3:  # another address
        record.email = f"{(original.given or 'x')[0].lower()}{record.record}@{rng.choice(MAIL_DOMAINS)}"
    done: list[str] = []
    kinds, weights = list(CORRUPTIONS), list(CORRUPTIONS.values())
    wanted = rng.choices((1, 2, 3, 4), (25, 40, 25, 10))[0]
    for _ in range(20):  # distinct kinds (a swap done twice undoes itself); one that cannot apply is redrawn
        kind = rng.choices(kinds, weights)[0]
        if kind not in done and _apply(rng, w, record, kind):
            done.append(kind)
            if len(done) == wanted:
                break
    for _ in range(20):  # two errors that undid each other (a letter doubled, then one dropped): one more
        if _written(record) != _written(original):
            break
        kind = rng.choices(kinds, weights)[0]
        if kind not in done and kind != "moved" and _apply(rng, w, record, kind):
            done.append(kind)
    record.corruptions = tuple(done)
    return record


def _apply(rng: random.Random, w: _World, r: Record, kind: str) -> bool:
    """Do ``kind`` to the record; False when it cannot (no field left to corrupt)."""
    if kind in ("keyboard_typo", "ocr_error", "phonetic_error"):
        fields = [f for f in (("given", "family") if kind == "phonetic_error" else
                              ("given", "family", "family", "address", "city")) if getattr(r, f)]
        if kind == "ocr_error" and r.postcode:
            fields.append("postcode")
        if not fields:
            return False
        name = rng.choice(fields)
        how = {"keyboard_typo": keyboard_typo, "ocr_error": ocr_error, "phonetic_error": phonetic_error}[kind]
        setattr(r, name, how(rng, getattr(r, name)))
        return True
    if kind == "names_swapped":
        if not (r.given and r.family):
            return False
        r.given, r.family = r.family, r.given
        return True
    if kind == "nickname":
        options = NICKNAMES.get(r.given or "")
        if not options:
            return False
        r.given = rng.choice(options)
        return True
    if kind == "initial":
        if not r.given or len(r.given) < 2:
            return False
        r.given = r.given[0] + ("." if rng.random() < 0.5 else "")
        return True
    if kind.endswith("_missing"):
        name = {"given": "given", "family": "family", "birthday": "birthday", "address": "address",
                "postcode": "postcode", "city": "city"}[kind.removesuffix("_missing")]
        if getattr(r, name) is None or (name in ("given", "family") and not (r.given and r.family)):
            return False
        setattr(r, name, None)
        return True
    if kind in ("day_month_swapped", "year_mistyped", "day_mistyped"):
        if r.birthday is None:
            return False
        b = r.birthday
        try:
            if kind == "day_month_swapped":
                if b.day > 12 or b.day == b.month:
                    return False
                r.birthday = b.replace(month=b.day, day=b.month)
            elif kind == "year_mistyped":
                digits = str(b.year)
                way = rng.choice(("one", "ten", "swap"))
                year = b.year + rng.choice((-1, 1)) if way == "one" else b.year + rng.choice((-10, 10)) \
                    if way == "ten" else int(digits[:2] + digits[3] + digits[2])
                if year == b.year:
                    year = b.year + 1
                r.birthday = b.replace(year=year)
            else:
                day = b.day + rng.choice((-1, 1, 10, -10)) if rng.random() < 0.7 else int(str(b.day)[::-1])
                r.birthday = b.replace(day=day) if day != b.day else b.replace(day=1 if b.day != 1 else 2)
        except ValueError:  # the 31st of a short month, the 29th of February
            return False
        return True
    if kind == "moved":
        _moved(rng, w, r)
        return True
    if kind == "postcode_typo":
        if not r.postcode:
            return False
        chars = list(r.postcode)
        i = rng.choice([i for i, c in enumerate(chars) if c != " "])
        chars[i] = rng.choice([c for c in ("0123456789" if chars[i].isdigit() else POSTCODE_LETTERS) if c != chars[i]])
        if rng.random() < 0.3:
            chars = [c for c in chars if c != " "]  # written without its space
        r.postcode = "".join(chars)
        return True
    if kind == "address_abbreviated":
        if not r.address:
            return False
        for full, short, _ in STREET_TYPES:
            if r.address.endswith(f" {full}"):
                r.address = r.address[: -len(full)] + (short if rng.random() < 0.7 else f"{short}.")
                return True
        return False
    if kind == "house_number_typo":
        if not r.address or not r.address.split(" ", 1)[0].isdigit():
            return False
        number, rest = r.address.split(" ", 1)
        changed = int(number) + rng.choice((-2, -1, 1, 2, 10))
        r.address = f"{changed if changed >= 1 else int(number) + 1} {rest}"
        return True
    raise ValueError(kind)


def records(*, customers: int, seed: int = 7, duplicate_share: float = DUPLICATE_SHARE, first: int = 0,
            today: date | None = None) -> Iterator[Record]:
    """The records of people ``first`` … ``first + customers - 1``: each person's original, and for a
    ``duplicate_share`` of them one to five more records corrupted independently. Chunks of 10,000 people each
    draw from their own random stream, so a part of the file is the same however it is cut."""
    w = world()
    today = today or date(2026, 12, 1)
    for chunk in range(first // CHUNK, (first + customers - 1) // CHUNK + 1 if customers else 0):
        rng = random.Random(f"western:{seed}:{chunk}")
        for number in range(chunk * CHUNK, (chunk + 1) * CHUNK):
            original = _original(rng, w, seed, number, today)
            extra = rng.choices((1, 2, 3, 4, 5), (50, 25, 13, 8, 4))[0] if rng.random() < duplicate_share else 0
            copies = [corrupt(rng, w, original, v, seed) for v in range(1, extra + 1)]
            if first <= number < first + customers:
                yield original
                yield from copies


@dataclass
class Made:
    customers: int = 0  # people
    profiles: int = 0  # records
    duplicates: int = 0  # records that are another record's person again
    true_pairs: int = 0
    identities: int = 0
    corruptions: Counter[str] = field(default_factory=Counter)  # kind → duplicates it was done to
    seconds: float = 0.0

    def rates(self) -> dict[str, float]:
        """The share of duplicates each corruption was done to."""
        return {k: round(n / self.duplicates, 4) for k, n in sorted(self.corruptions.items())} if self.duplicates \
            else {}

    def as_dict(self) -> dict[str, Any]:
        return {"customers": self.customers, "profiles": self.profiles, "duplicates": self.duplicates,
                "true_pairs": self.true_pairs, "corruption_rates": self.rates(), "seconds": round(self.seconds, 2)}


def _count(made: Made, batch: list[Record]) -> None:
    people = Counter(r.person for r in batch)
    made.customers += len(people)
    made.profiles += len(batch)
    made.duplicates += sum(1 for r in batch if r.record % 8)
    made.true_pairs += sum(n * (n - 1) // 2 for n in people.values())
    for r in batch:
        made.corruptions.update(set(r.corruptions))


def generate(database: Database, org_id: int, *, customers: int, seed: int = 7,
             duplicate_share: float = DUPLICATE_SHARE, truth: TextIO | None = None,
             progress: Callable[[int], None] | None = None) -> Made:
    """Write ``customers`` people's records to the organisation as profiles (each with its customer number as a
    ``dealer_customer_no`` identity, and the mobile or e-mail the few have), spread over its dealers, through
    kehu's writer of profiles and identities. ``truth`` receives ``profile_id,person`` lines."""
    started = time.perf_counter()
    made = Made()
    with database.unit_of_work() as session:
        units = list(session.scalars(select(BusinessUnit.id).where(
            BusinessUnit.org_id == org_id, BusinessUnit.kind == "dealer", BusinessUnit.is_active)
            .order_by(BusinessUnit.code))) or list(session.scalars(select(BusinessUnit.id).where(
                BusinessUnit.org_id == org_id, BusinessUnit.parent_id.is_(None))))
        if session.scalar(select(Identity.id).where(Identity.org_id == org_id, Identity.kind == "dealer_customer_no",
                                                    Identity.value == f"W{seed}-0")):
            raise Conflict(f"Western customers were generated with seed {seed} already; choose another seed.")
    if truth is not None and truth.tell() == 0:
        truth.write("profile_id,person\n")
    batch: list[Record] = []
    for record in itertools.chain(records(customers=customers, seed=seed, duplicate_share=duplicate_share),
                                  [None]):
        if record is not None:
            batch.append(record)
        if batch and (record is None or (len(batch) >= CHUNK and record.record % 8 == 0)):
            last = batch.pop() if record is not None else None  # a person's records stay in one batch
            with database.unit_of_work() as session:
                ids = _write(session, org_id, units, batch)
            if truth is not None:
                truth.writelines(f"{profile_id},{r.person}\n" for profile_id, r in zip(ids, batch, strict=True))
            _count(made, batch)
            made.identities += len(batch) + sum(1 for r in batch if r.mobile) + sum(1 for r in batch if r.email)
            if progress:
                progress(len({r.person for r in batch}))
            batch = [last] if last is not None else []
    made.seconds = time.perf_counter() - started
    return made


def _write(session: Any, org_id: int, units: list[int], batch: list[Record]) -> list[int]:
    now = utcnow()
    ids = writer.write_profiles(session, {
        "org_id": EveryRow(org_id), "unit_id": [units[r.record // 8 % len(units)] for r in batch],
        "name": [r.name for r in batch], "name_pinyin": [normalise.pinyin(r.name) for r in batch],
        "gender": [r.gender for r in batch], "birthday": [r.birthday for r in batch],
        "mobile": [r.mobile for r in batch], "email": [r.email for r in batch],
        "province": [r.county for r in batch], "city": [r.city for r in batch],
        "address": [r.address for r in batch], "postcode": [r.postcode for r in batch],
        "source": EveryRow("import"), "lifecycle_stage": EveryRow("prospect"), "attributes": EveryRow({}),
        "trait_times": EveryRow({}), "first_seen_at": EveryRow(now), "last_seen_at": EveryRow(now)}, now=now)
    kinds, values, owners = [], [], []
    for profile_id, r in zip(ids, batch, strict=True):
        for kind, value in (("dealer_customer_no", r.customer_no), ("mobile", r.mobile), ("email", r.email)):
            if value:
                kinds.append(kind)
                values.append(value)
                owners.append(profile_id)
    writer.write_identities(session, org_id, profile_ids=owners, kinds=kinds, values=values,
                            source_ids=EveryRow(None), first_seen=EveryRow(now))
    return ids


CSV_COLUMNS = ("customer_no", "name", "gender", "birthday", "address", "city", "county", "postcode", "mobile", "email")


def write_csv(out: TextIO, rows: Iterator[Record] | list[Record]) -> int:
    """The records as a customer file `kehu import` reads (its headers are the import's English synonyms); the
    number of rows written."""
    sheet = CsvStream(out)
    sheet.write(["Customer No", "Name", "Gender", "Date of birth", "Address", "City", "State", "Postcode",
                    "Mobile", "Email"])
    count = 0
    for r in rows:
        sheet.write([r.customer_no, r.name or "", r.gender or "", r.birthday.isoformat() if r.birthday else "",
                        r.address or "", r.city or "", r.county or "", r.postcode or "", r.mobile or "",
                        r.email or ""])
        count += 1
    return count
