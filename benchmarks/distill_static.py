"""Distil the static token-embedding table of ``encoder="cascade"`` from the bundled model.

The recipe is Model2Vec's (Tulkens and van Dongen, 2024), written here from its description:

1. every token of the bundled tokenizer's vocabulary goes through the bundled model on its own,
   as the three-token input ``[SEP] token [CLS]``; the token's vector is the mean of the last
   layer over those three positions;
2. the ``[unused…]`` placeholder tokens are dropped (their rows stay zero: the tokenizer never
   produces them);
3. the vectors are centred and reduced by PCA;
4. each row is weighted by SIF, ``a / (a + p)`` with ``a = 1e-4``, where ``p`` is the token's
   probability under Zipf's law from its rank in the vocabulary (BERT's WordPiece vocabulary
   lists whole words roughly from frequent to rare after its first ~2,000 entries); no corpus
   is read.

The table is stored as int8 codes with one float16 scale per row
(``synaptoroute_agents/assets/static_minilm.npz``). A sentence's static embedding is the mean of
its tokens' rows (no special tokens), scaled to unit length.

``--compare DATA`` measures variants (PCA width, weighting) by nearest-utterance accuracy,
fitting on each data set's train split and scoring its validation split (or a seeded 20% of
train when the set has no validation split); test splits are never read.

Run: ``uv run python -m benchmarks.distill_static [--raw-cache FILE] [--dims 128] [--compare DIR]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "synaptoroute_agents" / "assets" / "static_minilm.npz"
SIF_A = 1e-4  # the recipe's SIF coefficient
UNUSED = re.compile(r"\[unused\d+\]")


def token_vectors(batch: int = 512) -> tuple[np.ndarray, list[str]]:
    """The bundled model's last layer, mean over ``[SEP] token [CLS]``, for every vocabulary id."""
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    enc = BundledEncoder()
    session, tok = enc._session()
    vocab = tok.get_vocab()
    n = len(vocab)
    names = [""] * n
    for t, i in vocab.items():
        names[i] = t
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    out = np.empty((n, enc.dim), dtype=np.float32)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        ids = np.arange(start, min(n, start + batch), dtype=np.int64)
        x = np.stack([np.full_like(ids, sep_id), ids, np.full_like(ids, cls_id)], axis=1)
        mask = np.ones_like(x)
        (last,) = session.run(
            ["last_hidden_state"],
            {"input_ids": x, "attention_mask": mask, "token_type_ids": np.zeros_like(x)},
        )
        out[start : start + len(ids)] = np.asarray(last, dtype=np.float32).mean(axis=1)
    print(f"embedded {n} tokens in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return out, names


def build_table(raw: np.ndarray, names: list[str], dims: int, weighting: str) -> np.ndarray:
    """PCA to ``dims`` and SIF weights (``weighting``: "zipf" per the recipe, or "none")."""
    keep = np.array([not UNUSED.fullmatch(t) for t in names])
    x = raw[keep].astype(np.float64)
    x -= x.mean(axis=0)
    # PCA by SVD of the centred rows; components ordered by variance
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    reduced = x @ vt[:dims].T
    if weighting == "zipf":
        inv_rank = 1.0 / np.arange(2, len(reduced) + 2)
        p = inv_rank / inv_rank.sum()
        reduced *= (SIF_A / (SIF_A + p))[:, None]
    elif weighting != "none":
        raise SystemExit(f"unknown weighting {weighting!r}")
    table = np.zeros((len(names), dims), dtype=np.float32)
    table[keep] = reduced
    return table


def quantize(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and one float16 scale per row (``row ~= codes * scale``)."""
    peak = np.abs(table).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float16)
    codes = np.clip(np.rint(table / scale.astype(np.float32)[:, None]), -127, 127).astype(np.int8)
    return codes, scale


def save(codes: np.ndarray, scale: np.ndarray, meta: dict[str, object], path: Path) -> None:
    from synaptoroute_agents.encoders.model_files import MODEL_SHA256, TOKENIZER_SHA256

    meta = {**meta, "model_sha256": MODEL_SHA256, "tokenizer_sha256": TOKENIZER_SHA256}
    np.savez_compressed(path, codes=codes, scales=scale, meta=np.array(json.dumps(meta, sort_keys=True)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), sha256 {digest}", file=sys.stderr)


def _read(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def compare(raw: np.ndarray, names: list[str], data: Path) -> None:
    """Nearest-utterance accuracy of each variant on every set's train -> validation split."""
    from tokenizers import Tokenizer

    from synaptoroute_agents.encoders.model_files import tokenizer_dir

    tok = Tokenizer.from_file(str(tokenizer_dir() / "tokenizer.json"))
    sets = []
    for d in sorted(p for p in data.iterdir() if (p / "train.jsonl").is_file()):
        tr_x, tr_y = _read(d / "train.jsonl")
        if (d / "val.jsonl").is_file():
            va_x, va_y = _read(d / "val.jsonl")
        else:  # a seeded 20% of train as validation (test is never read)
            rng = np.random.default_rng(0)
            hold = set(rng.choice(len(tr_x), len(tr_x) // 5, replace=False).tolist())
            va_x = [t for i, t in enumerate(tr_x) if i in hold]
            va_y = [t for i, t in enumerate(tr_y) if i in hold]
            tr_x = [t for i, t in enumerate(tr_x) if i not in hold]
            tr_y = [t for i, t in enumerate(tr_y) if i not in hold]
        oos = {"oos"}
        tr = [(t, y) for t, y in zip(tr_x, tr_y, strict=True) if y not in oos]
        va = [(t, y) for t, y in zip(va_x, va_y, strict=True) if y not in oos]
        ids_tr = [e.ids for e in tok.encode_batch([t for t, _ in tr], add_special_tokens=False)]
        ids_va = [e.ids for e in tok.encode_batch([t for t, _ in va], add_special_tokens=False)]
        sets.append((d.name, ids_tr, [y for _, y in tr], ids_va, [y for _, y in va]))

    def embed(table: np.ndarray, ids: list[list[int]]) -> np.ndarray:
        out = np.stack([table[i].mean(axis=0) if i else np.zeros(table.shape[1]) for i in ids])
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    for dims in (64, 128, 256):
        for weighting in ("zipf", "none"):
            codes, scale = quantize(build_table(raw, names, dims, weighting))
            table = codes.astype(np.float32) * scale.astype(np.float32)[:, None]
            accs = []
            for _, ids_tr, y_tr, ids_va, y_va in sets:
                a, b = embed(table, ids_tr), embed(table, ids_va)
                nn = np.argmax(b @ a.T, axis=1)
                accs.append(float(np.mean([y_tr[j] == y for j, y in zip(nn, y_va, strict=True)])))
            cells = ", ".join(f"{s[0]} {a:.4f}" for s, a in zip(sets, accs, strict=True))
            print(f"dims {dims:3d} weighting {weighting:4s}: {cells}; mean {np.mean(accs):.4f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, default=128, help="PCA width of the shipped table")
    ap.add_argument("--weighting", choices=("zipf", "none"), default="zipf")
    ap.add_argument("--raw-cache", type=Path, help="keep the model's token vectors here and reuse them")
    ap.add_argument("--compare", type=Path, help="measure variants on this data folder's train/val splits")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.raw_cache is not None and args.raw_cache.is_file():
        with np.load(args.raw_cache) as z:
            raw, names = z["raw"], [str(t) for t in z["names"]]
    else:
        raw, names = token_vectors()
        if args.raw_cache is not None:
            np.savez(args.raw_cache, raw=raw, names=np.array(names))
    if args.compare is not None:
        compare(raw, names, args.compare)
        return 0
    codes, scale = quantize(build_table(raw, names, args.dims, args.weighting))
    meta = {
        "recipe": "model2vec: [SEP] token [CLS] mean of last layer; PCA; SIF a=1e-4 with Zipf ranks",
        "dims": args.dims,
        "weighting": args.weighting,
        "dropped": "[unused*] tokens (zero rows)",
    }
    save(codes, scale, meta, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
