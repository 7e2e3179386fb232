"""The static tier: a token-embedding table distilled from the bundled model (Model2Vec's recipe).

``assets/static_minilm.npz`` holds one row per token of the bundled tokenizer: the bundled
model's output for the token alone, reduced by PCA to 128 dimensions and weighted by SIF with
Zipf ranks, stored as int8 codes with a float16 scale per row. It is built by
``benchmarks/distill_static.py`` (in the repository) from the bundled model only; no corpus is read.
A text's static embedding is the mean of its tokens' rows, scaled to unit length: tokenizing
and one gather, 0.1-0.3 ms a text on a busy 2-core machine, against several milliseconds for
the transformer.

It is much weaker than the transformer (nearest-utterance accuracy 0.79-0.86 on the validation
splits of three public intent sets, ``benchmarks/distill_static.py --compare``):
:mod:`~synaptoroute_agents.encoders.cascade` uses it only where its decision is confident, and
the transformer for the rest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EncoderError, ModelIntegrityError
from .model_files import TOKENIZER_SHA256, check_digest, sha256_file, tokenizer_dir, verify_file

__all__ = ["STATIC_SHA256", "StaticEncoder", "static_table_path"]

#: sha256 of ``assets/static_minilm.npz`` (``benchmarks/distill_static.py --dims 128``).
STATIC_SHA256 = "ef8282d45b3339323b8aeda9d510d675ee39edbe341fb351802f73924bdb97f2"
_MAX_TOKENS = 256
_CHUNK = 256
#: words whose token ids are kept (a few MB); the cache starts again when it is full
_MAX_WORDS = 200_000

_table_lock = threading.Lock()
_table: tuple[np.ndarray, dict[str, Any]] | None = None


def static_table_path() -> Any:
    """Where the static table is installed."""
    return tokenizer_dir() / "static_minilm.npz"


def _load_table() -> tuple[np.ndarray, dict[str, Any]]:
    """The table as float32 rows (shared by every encoder of the process) and its metadata."""
    global _table
    with _table_lock:
        if _table is None:
            path = static_table_path()
            if not path.is_file():
                raise ModelIntegrityError(f"static embedding table not found at {path}")
            check_digest(sha256_file(path), STATIC_SHA256, "static embedding table", path)
            with np.load(path, allow_pickle=False) as z:
                codes, scales, meta = z["codes"], z["scales"], json.loads(str(z["meta"]))
            rows = codes.astype(np.float32) * scales.astype(np.float32)[:, None]
            _table = (np.ascontiguousarray(rows), meta)
        return _table


class StaticEncoder:
    """Static embeddings from the distilled table: mean of token rows, unit length.

    A text without any known token (or with only tokens whose rows are zero) gets a zero row;
    :meth:`embed` returns it as is (its cosine with everything is 0), so callers can tell.
    """

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        verify_file(tokenizer_dir() / "tokenizer.json", TOKENIZER_SHA256, "tokenizer file")
        self._rows, _meta = _load_table()
        tok = Tokenizer.from_file(str(tokenizer_dir() / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=_MAX_TOKENS)
        self._tok = tok
        self._words: dict[str, list[int]] = {}
        self._id = f"static:minilm-l6-model2vec-{self._rows.shape[1]}:{STATIC_SHA256[:12]}"

    @property
    def model_id(self) -> str:
        """The table's id (its width and the first digits of its sha256)."""
        return self._id

    @property
    def dim(self) -> int:
        """The table's width (128)."""
        return int(self._rows.shape[1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids (no special tokens, at most 256), as the tokenizer gives them.

        The tokenizer splits a text at whitespace before anything else, so a printable ASCII
        text's ids are its whitespace-separated words' ids one after the other: those come from a
        cache of words already seen (most of a query's words are), and only new words and other
        texts go through the tokenizer.
        """
        cache = self._words
        out: list[list[int] | None] = []
        new: dict[str, None] = {}
        others: list[int] = []
        for i, t in enumerate(texts):
            if t.isascii() and t.isprintable():
                words = t.split()
                for w in words:
                    if w not in cache:
                        new[w] = None
                out.append(None)
            else:
                others.append(i)
                out.append([])
        try:
            if new:
                got = self._tok.encode_batch(list(new), add_special_tokens=False)
                if len(cache) + len(new) > _MAX_WORDS:
                    cache.clear()
                cache.update({w: e.ids for w, e in zip(new, got, strict=True)})
            if others:
                for i, e in zip(
                    others,
                    self._tok.encode_batch([texts[i] for i in others], add_special_tokens=False),
                    strict=True,
                ):
                    out[i] = e.ids
        except Exception as exc:
            raise EncoderError(f"tokenization failed: {exc}") from exc
        res: list[list[int]] = []
        for t, ids in zip(texts, out, strict=True):
            if ids is None:
                ids = []
                for w in t.split():
                    got_ids = cache.get(w)
                    if got_ids is None:  # the cache was cleared meanwhile by another thread
                        got_ids = self._tok.encode(w, add_special_tokens=False).ids
                    ids += got_ids
                if len(ids) > _MAX_TOKENS:
                    del ids[_MAX_TOKENS:]
            res.append(ids)
        return res

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32: each text's mean token row, scaled to unit length."""
        n = len(texts)
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        enc = self.token_ids(texts)
        if n == 1:  # one query: one gather, no segment bookkeeping
            one = (
                self._rows[enc[0]].sum(axis=0, keepdims=True)
                if enc[0]
                else np.zeros((1, self.dim), np.float32)
            )
            norm = float(np.linalg.norm(one))
            return one / norm if norm > 0 else one
        lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=n)
        flat = np.fromiter((i for e in enc for i in e), dtype=np.int64, count=int(lengths.sum()))
        out = np.zeros((n, self.dim), dtype=np.float32)
        ends = np.cumsum(lengths)
        starts = ends - lengths
        # A few hundred texts at a time: their gathered token rows stay in cache (gathering every
        # token of 50,000 texts at once allocated ~400 MB and took ten times as long).
        for a in range(0, n, _CHUNK):
            b = min(a + _CHUNK, n)
            has = lengths[a:b] > 0
            if not has.any():
                continue
            lo = starts[a]
            seg = self._rows[flat[lo : ends[b - 1]]]
            out[a:b][has] = np.add.reduceat(seg, starts[a:b][has] - lo, axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
