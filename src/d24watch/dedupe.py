"""What counts as new: canonical URLs, text hashes and MinHash signatures over word 5-shingles
with LSH band keys. Pure: the index itself lives in the store."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from d24watch.text import folded_tokens

TRACKING_PARAMS = frozenset({"fbclid", "gclid", "mc_cid", "mc_eid", "ref", "cmpid"})
PERMUTATIONS = 128
BANDS, ROWS = 32, 4  # candidate threshold about (1/32) ** (1/4) = 0.42; the decision is made after
SHINGLE = 5
MIN_SHINGLES = 8  # below this a near-duplicate estimate means little; exact hashes still apply
MIN_CONTAINED = 40  # containment ("most of it lies inside a stored text") needs this many own shingles
BLOCK_MIN_WORDS = 3  # a line shorter than this ("Read more") is never taken for a site's recurring block
_PRIME = np.uint64((1 << 61) - 1)
# Each permutation is h -> (a*h + b) mod p with a and b drawn below the Mersenne prime p = 2^61 - 1.
# They must be that large: with a and b below 2^32, a*h never reaches p, so every permutation
# ordered shingles alike (by h) and one edited shingle could move most minima at once.
_rng = np.random.RandomState(20240301)
_A = _rng.randint(1, (1 << 61) - 1, size=PERMUTATIONS, dtype=np.uint64)
_B = _rng.randint(0, (1 << 61) - 1, size=PERMUTATIONS, dtype=np.uint64)


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and tracking parameters removed,
    the remaining query sorted; an empty path becomes `/`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port and not (scheme == "http" and port == 80) and not (scheme == "https" and port == 443):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    query.sort()
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def text_hash(text: str) -> str:
    """Equal for texts with the same words, whatever their case, marks, spacing or punctuation."""
    return hash_of(folded_tokens(text))


def hash_of(words: list[str]) -> str:
    """text_hash of a text whose folded tokens are `words`."""
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Signature:
    values: np.ndarray  # PERMUTATIONS uint32 minimum hashes
    shingles: int  # how many distinct shingles the text has

    def to_bytes(self) -> bytes:
        return self.values.astype("<u4").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes, shingles: int) -> Signature:
        return cls(np.frombuffer(blob, dtype="<u4").astype(np.uint32), shingles)

    @property
    def usable(self) -> bool:
        return self.shingles >= MIN_SHINGLES


def signature(text: str) -> Signature:
    return signature_of(folded_tokens(text))


def signature_of(words: list[str]) -> Signature:
    """The MinHash signature of a text whose folded tokens are `words`."""
    if len(words) < SHINGLE:
        shingles = {" ".join(words)} if words else set()
    else:
        shingles = {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
    if not shingles:
        return Signature(np.full(PERMUTATIONS, 0xFFFFFFFF, dtype=np.uint32), 0)
    hashed = np.fromiter((zlib.crc32(s.encode()) for s in shingles), dtype=np.uint64, count=len(shingles))
    with np.errstate(over="ignore"):  # a*h wraps modulo 2^64 before the reduction, as intended
        mixed = (np.outer(_A, hashed) + _B[:, None]) % _PRIME
    return Signature((mixed.min(axis=1) & np.uint64(0xFFFFFFFF)).astype(np.uint32), len(shingles))


def band_keys(sig: Signature) -> list[int]:
    """One signed 64-bit key per LSH band: texts sharing any key are candidates."""
    raw = sig.values.astype("<u4")
    keys = []
    for band in range(BANDS):
        chunk = raw[band * ROWS : (band + 1) * ROWS].tobytes()
        digest = hashlib.blake2b(bytes([band]) + chunk, digest_size=8).digest()
        keys.append(int.from_bytes(digest, "big", signed=True))
    return keys


def similarity(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets."""
    return float(np.count_nonzero(a.values == b.values)) / PERMUTATIONS


def containment(new: Signature, old: Signature) -> float:
    """Estimated share of `new`'s shingles found in `old` (a reprint cut from a longer original)."""
    j = similarity(new, old)
    if not new.shingles:
        return 0.0
    return min(1.0, j / (1 + j) * (new.shingles + old.shingles) / new.shingles)


def is_near_duplicate(new: Signature, old: Signature, threshold: float) -> bool:
    if similarity(new, old) >= threshold:
        return True
    return new.shingles >= MIN_CONTAINED and containment(new, old) >= threshold


def site_of(url: str) -> str:
    """The host whose pages share a template: a site's recurring blocks are counted per host."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def text_blocks(text: str) -> tuple[tuple[int, int], ...]:
    """(key, words) of each line (paragraph) of a text long enough to be a site's recurring block
    (navigation, a related-stories box, a disclaimer, a sign-off), each key once, in order."""
    return blocks_of([folded_tokens(line) for line in text.splitlines()])


def blocks_of(lines: list[list[str]]) -> tuple[tuple[int, int], ...]:
    """`text_blocks` from the folded words of each line, when they are at hand already."""
    out: dict[int, int] = {}
    for words in lines:
        if len(words) >= BLOCK_MIN_WORDS:
            digest = hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest()
            out.setdefault(int.from_bytes(digest, "big", signed=True), len(words))
    return tuple(out.items())


SITE_SHARE = 0.15  # below this share of a text, a site's blocks change no comparison: not worth a new signature


def compared_signature(
    sig: Signature, text: str, blocks: tuple[tuple[int, int], ...], site: set[int], words: int
) -> Signature:
    """The signature a text is compared (and indexed) by: its own lines' once the site's
    recurring blocks are a real share of its `words`, unless next to nothing is left (then the
    page is a copy of a page, not a page of a template); otherwise `sig`, the whole text's."""
    if not site or sum(n for key, n in blocks if key in site) < SITE_SHARE * max(1, words):
        return sig
    own = signature(own_text(text, site))
    return own if own.usable else sig


def block_hashes(text: str) -> list[int]:
    """The keys of `text_blocks`."""
    return [key for key, _ in text_blocks(text)]


def own_text(text: str, boilerplate: set[int]) -> str:
    """The text without the lines that are the site's recurring blocks."""
    if not boilerplate:
        return text
    kept = [line for line in text.splitlines() if not (set(block_hashes(line)) & boilerplate)]
    return "\n".join(kept)
