"""An article's text with what dedupe and search need, from one pass of folding: the hash of its
words, its MinHash signature and its folded words for the search index. Pure; computed in the
worker beside extraction, so the daemon's process does not fold the text again."""

from __future__ import annotations

from dataclasses import dataclass

from d24watch.dedupe import hash_of, signature_of, text_blocks
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
    words = folded_tokens(article.text)
    sig = signature_of(words)
    return Prepared(article, hash_of(words), sig.to_bytes(), sig.shingles, " ".join(words), text_blocks(article.text))
