"""How names are written differently by people who mean the same one: a sound key for Latin names (and pinyin),
and the usual English nicknames (Bill for William). Pure functions over one name part; the records module applies
them to the distinct parts of an organisation's names, never row by row."""

from __future__ import annotations

import functools
import re

# Nicknames and short forms → the formal name they stand for (lower case). A short form shared by two names
# (Chris, Alex, Sam, Pat, Harry) takes the more common; a pair it misses still meets on the family name.
_NICKNAMES = {
    "william": "bill will billy willy liam", "robert": "bob rob bobby robbie bert", "richard": "rick dick rich ricky",
    "james": "jim jimmy jamie", "john": "jack johnny jon", "michael": "mike mick micky mickey", "thomas": "tom tommy",
    "christopher": "chris kit", "anthony": "tony", "andrew": "andy drew", "stephen": "steve stevie",
    "steven": "steve", "daniel": "dan danny", "matthew": "matt", "nicholas": "nick nicky", "benjamin": "ben benny",
    "joseph": "joe joey", "samuel": "sam sammy", "edward": "ed eddie ted ned", "charles": "charlie chuck chas",
    "alexander": "alex sandy", "peter": "pete", "david": "dave davy", "kenneth": "ken kenny",
    "frederick": "fred freddie freddy", "harold": "harry", "henry": "hal hank", "raymond": "ray",
    "ronald": "ron ronnie", "gerald": "gerry jerry", "timothy": "tim timmy", "philip": "phil", "phillip": "phil",
    "patrick": "pat paddy", "jonathan": "jonny", "francis": "frank frankie", "leonard": "len lenny",
    "lawrence": "larry laurie", "douglas": "doug", "terence": "terry", "gregory": "greg", "jeffrey": "jeff",
    "geoffrey": "geoff", "malcolm": "mal", "stuart": "stu", "nathan": "nate", "vincent": "vince", "albert": "al",
    "elizabeth": "liz beth lizzie betty eliza libby", "margaret": "maggie peggy meg maggy madge",
    "katherine": "kate kathy katie kath", "catherine": "cathy cath cat", "jennifer": "jenny jen",
    "patricia": "trish patty tricia", "susan": "sue susie suzy", "deborah": "debbie deb debra",
    "rebecca": "becky becca", "victoria": "vicky vicki tori", "samantha": "sammie", "jacqueline": "jackie",
    "christine": "chrissie christina", "alexandra": "lexi", "abigail": "abby abbie", "nicola": "nikki",
    "amanda": "mandy", "dorothy": "dot dolly dotty", "eleanor": "ellie nell nellie", "barbara": "barbie babs",
    "valerie": "val", "gillian": "gill jill", "natasha": "tash tasha", "frances": "fran", "judith": "judy jude",
    "joanne": "jo", "stephanie": "steph", "teresa": "terri tess", "helen": "nell", "caroline": "carol carrie",
    "josephine": "josie", "pamela": "pam", "sandra": "sandy", "kimberley": "kim", "jessica": "jess jessie",
    "charlotte": "lottie charlie", "lucy": "lu", "emily": "em emmy", "sophie": "soph", "louise": "lou",
    "hannah": "hanna", "christian": "christy",
}
NICKNAMES: dict[str, str] = {short: formal for formal, shorts in _NICKNAMES.items() for short in shorts.split()}

_LETTERS = re.compile(r"[^a-z]")
# Spellings that sound alike, made one before the letters are classed (in this order)
_START = (("kn", "n"), ("wr", "r"), ("ps", "s"), ("wh", "w"), ("mac", "mc"), ("x", "s"), ("gn", "n"))
_ANYWHERE = (("tch", "ch"), ("sch", "sk"), ("ph", "f"), ("gh", ""), ("ck", "k"), ("dg", "j"), ("qu", "kw"),
             ("q", "k"), ("x", "ks"), ("z", "s"))
_SOFT_C = re.compile(r"c(?=[eiy])")
_SILENT_R = re.compile(r"(?<=.)r(?![aeiouy])")  # a British r before a consonant or at the end is not heard
_CLASSES = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjksxz", "2"), **dict.fromkeys("dt", "3"), "l": "4",
            **dict.fromkeys("mn", "5"), "r": "6"}


@functools.lru_cache(maxsize=500_000)
def sound_key(part: str | None) -> str | None:
    """A Soundex-like key that keeps what a name sounds like: Phillips/Filips, Catherine/Katherine,
    Stephenson/Stevenson, Walker/Walka, Mcdonald/Macdonald get one key. The first sound as a letter, then up to
    five consonant classes (repeats folded, vowels dropped)."""
    text = _LETTERS.sub("", (part or "").lower())
    if not text:
        return None
    for old, new in _START:
        if text.startswith(old) and len(text) > len(old):
            text = new + text[len(old):]
            break
    for old, new in _ANYWHERE:
        text = text.replace(old, new)
    text = _SOFT_C.sub("s", text).replace("c", "k")
    text = _SILENT_R.sub("", text) or text
    if not text:
        return None
    digits, last = [], _CLASSES.get(text[0], "")
    for char in text[1:]:
        code = _CLASSES.get(char, "")
        if code and code != last:
            digits.append(code)
        if char not in "hw":  # h and w do not part two consonants of a class (Soundex)
            last = code
    return (text[0] + "".join(digits))[:6]


def canonical(part: str | None) -> str | None:
    """The formal name a nickname stands for (bill → william); any other part as it is."""
    if not part:
        return None
    return NICKNAMES.get(part, part)
