"""An article's text with what dedupe and search need, from one pass of folding: the hash of its
words, its MinHash signature and its folded words for the search index. Pure; computed in the
worker beside extraction, so the daemon's process does not fold the text again."""

from __future__ import annotations

from dataclasses import dataclass

from d24watch.dedupe import blocks_of, hash_of, signature_of
from d24watch.models import ArticleText
from d24watch.text import folded_tokens


@dataclass(frozen=True, slots=True)
class Prepared:
    article: ArticleText
    text_hash: str
    signature: bytes
    shingles: int
    folded: str  # the folded words, space-separated: what the search index holds
    blocks: tuple[tuple[int, int], ...] = ()  # (key, words) of its lines that may be a site's block


def prepare(article: ArticleText) -> Prepared:
    # Tokens never span a line, so the text's words are its lines' words, folded once for both.
    lines = [folded_tokens(line) for line in article.text.splitlines()]
    words = [w for line in lines for w in line]
    sig = signature_of(words)
    return Prepared(article, hash_of(words), sig.to_bytes(), sig.shingles, " ".join(words), blocks_of(lines))
