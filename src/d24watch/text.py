"""One definition of text for matching, dedupe and search: NFC, folding (đ to d, marks off,
case folded) and tokens with offsets into the original text. Pure: no I/O, no clock."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import NamedTuple

# A token is a run of letters and digits; combining marks inside a run belong to it, so
# decomposed (NFD) input and legacy-encoding damage such as "B́nh" keep their offsets.
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
TOKEN_RE = re.compile(rf"[^\W_][^\W_{_MARKS}]*(?:[{_MARKS}]+[^\W_]*)*")
_SPECIAL = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "ı": "i", "ł": "l", "Ł": "l", "ø": "o"})


class Token(NamedTuple):
    # A tuple, not a dataclass: an article makes thousands and building them is the matcher's main cost.
    start: int
    end: int
    folded: str


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@lru_cache(maxsize=200_000)
def fold_word(word: str) -> str:
    """Fold one token: no marks, đ as d, case folded. `Thuý`, `Thúy` and `THUY` all give `thuy`."""
    decomposed = unicodedata.normalize("NFD", word.translate(_SPECIAL))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.casefold().translate(_SPECIAL)


def fold(text: str) -> str:
    """Fold a whole string (spaces and punctuation kept, lengths may change)."""
    return " ".join(fold_word(part) for part in text.split(" "))


def tokenize(text: str) -> list[Token]:
    """Tokens of `text` with offsets into `text` itself, whatever its normal form."""
    return [Token(m.start(), m.end(), fold_word(m.group())) for m in TOKEN_RE.finditer(text)]


def folded_tokens(text: str) -> list[str]:
    return [fold_word(m) for m in TOKEN_RE.findall(text)]


def folded_key(text: str) -> str:
    """The folded tokens of `text` joined by single spaces: equal keys mean equal words."""
    return " ".join(folded_tokens(text))


def has_marks(word: str) -> bool:
    """True when the word carries Vietnamese letters or tone marks (it is not plain ASCII)."""
    return fold_word(word) != word.casefold()


_OLD_TONE = re.compile(r"([oOuU])([\u0300\u0301\u0303\u0309\u0323])([aAeEyY])")


@lru_cache(maxsize=50_000)
def tone_key(word: str) -> str:
    """Case-folded NFC word with old tone placement moved to the new one (Thuý -> Thúy,
    Hoà -> Hòa): the two styles compare equal while Bách and Bạch stay apart."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    moved = _OLD_TONE.sub(lambda m: m.group(1) + m.group(3) + m.group(2), decomposed)
    return unicodedata.normalize("NFC", moved)


def within_one_edit(a: str, b: str) -> bool:
    """True when `a` and `b` differ by exactly one insertion, deletion, substitution or
    transposition of adjacent letters."""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    if la > lb:
        a, b = b, a
    # b is one letter longer than a: find the first difference and skip it in b.
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


def snippet(text: str, start: int, end: int, width: int = 200) -> str:
    """About `width` characters of `text` around [start, end), cut at spaces, on one line."""
    room = max(0, width - (end - start)) // 2
    lo, hi = max(0, start - room), min(len(text), end + room)
    if lo > 0:
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    body = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


def short_diff(old: str, new: str, *, lines: int = 12, width: int = 200) -> str:
    """What an edit changed, sentence by sentence: `- removed` and `+ added` lines, at most
    `lines` of them, each cut to `width` characters."""
    import difflib

    def sentences(text: str) -> list[str]:
        return [s.strip() for s in re.split(r"(?<=[.!?…])\s+|\n+", text) if s.strip()]

    out = []
    for line in difflib.unified_diff(sentences(old), sentences(new), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        line = f"{line[0]} {line[1:]}"
        out.append(line if len(line) <= width else line[: width - 1] + "…")
        if len(out) >= lines:
            out.append("…")
            break
    return "\n".join(out)


# UTF-8 read as cp1252 or Latin-1 leaves a lead byte's letter (Ã Ä Æ Ì Í á) before a continuation
# byte's character; only text showing that pair is handed to ftfy, which repairs it only when the
# bytes decode cleanly again (it leaves "Thái Bình — “café”" alone).
_MOJIBAKE = re.compile(
    "[\u00c3\u00c4\u00c6\u00cc\u00cd\u00e1][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e"
    "\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


def repair_text(text: str) -> str:
    """`Nguyá»…n VÄƒn BÃ¬nh` back to `Nguyễn Văn Bình` where the damage can be decided; any other
    text unchanged. Letters a legacy encoding lost (to `?` or U+FFFD) are left to the matcher."""
    if not text or not _MOJIBAKE.search(text):
        return text
    import ftfy

    return nfc(ftfy.fix_encoding(text))
