"""TF-IDF content embeddings from title, description and categories (for cold items)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer


def item_texts(
    titles: Sequence[str], descriptions: Sequence[str], categories: Sequence[Sequence[str]]
) -> list[str]:
    """One document per item. Categories are joined into single tokens (``cat_home_garden``) so
    a category name never collides with an ordinary word of the description.
    """
    docs = []
    for title, desc, cats in zip(titles, descriptions, categories, strict=True):
        cat_tokens = " ".join("cat_" + "_".join(str(c).lower().split()) for c in cats)
        # Title twice: it is short and more specific than a marketing description.
        docs.append(f"{title} {title} {desc} {cat_tokens}".strip())
    return docs


def content_embeddings(
    docs: Sequence[str], *, dim: int = 64, random_state: int = 0
) -> np.ndarray | None:
    """Unit-norm float32 (n_items, d) embeddings; rows of items without text are zero.

    TF-IDF (unigrams + bigrams, sublinear tf) reduced with truncated SVD when the vocabulary is
    larger than ``dim``. Returns None when no item has usable text.
    """
    if not any(d.strip() for d in docs):
        return None
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        min_df=1,
        max_features=50_000,
        sublinear_tf=True,
        token_pattern=r"(?u)\b\w[\w'-]*\b",  # noqa: S106 - a regex, not a password
    )
    try:
        tfidf = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary, e.g. only stop words / punctuation
        return None
    n_docs, n_terms = tfidf.shape
    if n_terms > dim and n_docs > dim:
        svd = TruncatedSVD(n_components=dim, random_state=random_state, algorithm="randomized")
        emb = svd.fit_transform(tfidf)
    else:
        emb = tfidf.toarray()
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.where(norms > 0, norms, 1.0)).astype(np.float32)
