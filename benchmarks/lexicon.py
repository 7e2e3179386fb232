"""Library or reason: the hand-written TF-IDF lexicon of the fitted head against scikit-learn's
``TfidfVectorizer``, measured in one run.

``synaptoroute_agents.fitting.lexicon.Lexicon`` turns a text into lower-cased ``\\w+`` words and
adjacent word pairs, weighs each known term ``(1 + log tf) * idf`` (smoothed idf), L2-normalizes
the row, keeps terms seen in two examples or more (from 1,000 examples up) and caps the vocabulary.
The vectorizer is configured as close to that as it goes (``token_pattern=r"(?u)\\w+"``,
``ngram_range=(1, 2)``, ``lowercase``, ``sublinear_tf``, ``smooth_idf``, ``norm="l2"``, the same
``min_df`` and ``max_features``). One difference is left: the cap keeps the terms found in the most
examples here, the most frequent terms over all examples there.

1. Install: the distributions scikit-learn would add to a core install (those synaptoroute-agents
   does not already require), summed over their installed files, and the import time of
   ``sklearn.feature_extraction.text`` against ``scipy.sparse`` (the one module the lexicon imports
   beyond the engine), each in a fresh interpreter that has NumPy loaded, median of 5.
2. Speed on CLINC150 (train, in-scope examples: the vocabulary; test: the queries): fitting the
   vocabulary and idf (median of 5), transforming one query at a time as the router's head does
   (median over 1,000 queries, the two interleaved), and transforming the 5,500 test texts at once.
3. Agreement: for each test query the cosine between the two rows, their columns matched by term;
   the same with the vectorizer given our vocabulary (which isolates the cap's choice of terms).
   With ``--accuracy`` (the default), the router fitted on CLINC150 train + val and evaluated on
   test (as ``benchmarks.accuracy``), once with each; the vectorizer is swapped in for the fit by
   patching the name ``Lexicon`` in ``synaptoroute_agents.fitting.train`` (no engine file changes).

The machine may be shared: compare the ratios measured within this run, and read the load average
printed with them. Run from the repository root::

    OMP_WAIT_POLICY=PASSIVE uv run --group bench python -m benchmarks.lexicon --data ../shared/data
    OMP_WAIT_POLICY=PASSIVE uv run --group bench python -m benchmarks.lexicon --data ../shared/data --no-accuracy --json out.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before onnxruntime / BLAS start threads

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

import synaptoroute_agents.fitting.train as fitting_train
from synaptoroute_agents.evaluation import read_labelled
from synaptoroute_agents.fitting.lexicon import Lexicon

from .hand_written import _installed_bytes, _load, _out, _requires

__all__ = ["SklearnLexicon", "main", "vectorizer"]

# What the fit asks for on CLINC150: at most 3,000,000 lexical weights over 2 x (150 routes + reject).
_LEX_PARAMS = 3_000_000


def vectorizer(n_texts: int, max_terms: int, vocabulary: Sequence[str] | None = None) -> TfidfVectorizer:
    """A ``TfidfVectorizer`` set up as close to :class:`Lexicon` as its options go."""
    return TfidfVectorizer(
        lowercase=True,
        token_pattern=r"(?u)\w+",
        ngram_range=(1, 2),
        min_df=2 if n_texts >= 1000 else 1,
        max_features=None if vocabulary is not None else max_terms,
        vocabulary=vocabulary,
        sublinear_tf=True,
        smooth_idf=True,
        norm="l2",
        dtype=np.float32,
    )


class SklearnLexicon(Lexicon):
    """A :class:`Lexicon` whose vocabulary, idf and rows come from ``TfidfVectorizer``.

    It stores as a plain lexicon (same terms and idf), so a fitted head saves as usual.
    """

    vec: TfidfVectorizer

    @classmethod
    def fit(cls, texts: Sequence[str], max_terms: int = 20_000) -> SklearnLexicon:
        vec = vectorizer(len(texts), max_terms).fit(texts)
        lex = cls([vec.get_feature_names_out().tolist()], [np.asarray(vec.idf_, np.float32)])
        lex.vec = vec
        return lex

    def transform(self, texts: Sequence[str]) -> Any:
        return self.vec.transform(texts)


# --------------------------------------------------------------------------- 1. install
def _import_ms(module: str, runs: int = 5) -> float:
    """Median milliseconds to import ``module`` in a fresh interpreter that already has NumPy."""
    code = f"import numpy, time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return round(1e3 * statistics.median(times), 1)


def bench_install() -> dict[str, Any]:
    core = _requires("synaptoroute-agents")
    extra = sorted(_requires("scikit-learn") - core)
    sizes = {d: round(_installed_bytes(d) / 1e6, 1) for d in extra}
    return {
        "extra_distributions_mb": sizes,
        "extra_mb": round(sum(sizes.values()), 1),
        "import_ms_sklearn_text": _import_ms("sklearn.feature_extraction.text"),
        "import_ms_scipy_sparse": _import_ms("scipy.sparse"),
    }


# --------------------------------------------------------------------------- 2. speed
def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_speed(vocab: list[str], queries: list[str], max_terms: int, single: int) -> dict[str, Any]:
    fit_ours, fit_sk = [], []
    for _ in range(5):  # interleaved, so both see the same load
        fit_ours.append(_timed(lambda: Lexicon.fit(vocab, max_terms=max_terms)))
        fit_sk.append(_timed(lambda: vectorizer(len(vocab), max_terms).fit(vocab)))
    ours = Lexicon.fit(vocab, max_terms=max_terms)
    vec = vectorizer(len(vocab), max_terms).fit(vocab)
    sample = random.Random(0).sample(queries, min(single, len(queries)))
    one_ours, one_sk = [], []
    for q in sample:
        one_ours.append(_timed(lambda q=q: ours.transform([q])))  # type: ignore[misc]
        one_sk.append(_timed(lambda q=q: vec.transform([q])))  # type: ignore[misc]
    all_ours, all_sk = [], []
    for _ in range(5):
        all_ours.append(_timed(lambda: ours.transform(queries)))
        all_sk.append(_timed(lambda: vec.transform(queries)))
    res = {
        "vocabulary_texts": len(vocab),
        "max_terms": max_terms,
        "terms_ours": ours.dim,
        "terms_sklearn": len(vec.vocabulary_),
        "fit_ms_ours": round(1e3 * statistics.median(fit_ours), 1),
        "fit_ms_sklearn": round(1e3 * statistics.median(fit_sk), 1),
        "single_queries": len(sample),
        "single_us_ours": round(1e6 * statistics.median(one_ours), 1),
        "single_us_sklearn": round(1e6 * statistics.median(one_sk), 1),
        "batch_queries": len(queries),
        "batch_ms_ours": round(1e3 * statistics.median(all_ours), 1),
        "batch_ms_sklearn": round(1e3 * statistics.median(all_sk), 1),
    }
    for key in ("fit", "single", "batch"):
        unit = "us" if key == "single" else "ms"
        res[f"{key}_sklearn_over_ours"] = round(res[f"{key}_{unit}_sklearn"] / res[f"{key}_{unit}_ours"], 2)
    return res


# --------------------------------------------------------------------------- 3. agreement
def _cosines(ours: Lexicon, vec: TfidfVectorizer, queries: list[str]) -> dict[str, Any]:
    """Row-wise cosine of the two transforms, columns matched by term (a term only one side
    knows gets a column of its own)."""
    from scipy.sparse import csr_matrix

    col = {t: i for i, t in enumerate(ours.terms[0])}
    names = vec.get_feature_names_out().tolist()
    extra = [t for t in names if t not in col]
    for t in extra:
        col[t] = len(col)
    remap = np.array([col[t] for t in names], dtype=np.int64)
    A = ours.transform(queries).astype(np.float64)
    A = csr_matrix((A.data, A.indices, A.indptr), shape=(len(queries), len(col)))
    B = vec.transform(queries).tocsr().astype(np.float64)
    B = csr_matrix((B.data, remap[B.indices], B.indptr), shape=(len(queries), len(col)))
    dots = np.asarray(A.multiply(B).sum(axis=1)).ravel()
    na = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    nb = np.sqrt(np.asarray(B.multiply(B).sum(axis=1)).ravel())
    both_empty = (na == 0) & (nb == 0)
    cos = np.where(both_empty, 1.0, dots / np.maximum(na * nb, 1e-30))
    shared = len(set(ours.terms[0]) & set(names))
    return {
        "terms_shared": shared,
        "terms_only_ours": ours.dim - shared,
        "terms_only_sklearn": len(extra),
        "queries": len(queries),
        "both_zero_rows": int(both_empty.sum()),
        "cosine_median": round(float(np.median(cos)), 6),
        "cosine_mean": round(float(cos.mean()), 6),
        "cosine_min": round(float(cos.min()), 6),
        "share_cosine_ge_0.999": round(float((cos >= 0.999).mean()), 4),
        "share_cosine_lt_0.9": round(float((cos < 0.9).mean()), 4),
    }


def bench_agreement(vocab: list[str], queries: list[str], max_terms: int) -> dict[str, Any]:
    ours = Lexicon.fit(vocab, max_terms=max_terms)
    capped = vectorizer(len(vocab), max_terms).fit(vocab)
    same_vocab = vectorizer(len(vocab), max_terms, vocabulary=ours.terms[0]).fit(vocab)
    idf_gap = float(np.abs(np.asarray(same_vocab.idf_, np.float32) - ours.idf[0]).max())
    return {
        "own_cap": _cosines(ours, capped, queries),
        "our_vocabulary": {**_cosines(ours, same_vocab, queries), "idf_max_abs_diff": idf_gap},
    }


def bench_accuracy(data: Path) -> dict[str, Any]:
    """The router fitted on CLINC150 (train + val) and evaluated on test, with each lexicon."""
    from synaptoroute_agents.cli.eval import run_eval
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    from .accuracy import CachedEncoder

    assert fitting_train.Lexicon is Lexicon, "the fit no longer builds its lexicon by this name"
    enc = CachedEncoder(BundledEncoder())
    clinc = {s: read_labelled(data / "clinc150" / f"{s}.jsonl") for s in ("train", "val", "test")}
    res: dict[str, Any] = {}
    for name, cls in (("ours", Lexicon), ("sklearn", SklearnLexicon)):
        with mock.patch.object(fitting_train, "Lexicon", cls):
            r = run_eval(clinc["train"], clinc["test"], val=clinc["val"], oos_label="oos", encoder=enc)
        s = r["settings"]
        res[name] = {
            "accuracy": round(r["accuracy"], 4),
            "in_scope_accuracy": round(r["in_scope_accuracy"], 4),
            "oos_recall": round(r["oos_recall"], 4),
            "fit_seconds": round(r["fit_seconds"], 1),
            "lexical_terms": s.get("lexical_terms"),
            "held_out_head_accuracy": s.get("held_out_head_accuracy"),
        }
        _out(f"  {name}: {json.dumps(res[name])}")
    return res


# --------------------------------------------------------------------------- report
def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder with clinc150/")
    ap.add_argument("--single", type=int, default=1000, help="queries transformed one at a time")
    ap.add_argument("--accuracy", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    train = read_labelled(args.data / "clinc150" / "train.jsonl")
    test = read_labelled(args.data / "clinc150" / "test.jsonl")
    vocab = [t for t, lab in zip(*train, strict=True) if lab != "oos"]
    queries = list(test[0])
    k = len({lab for lab in train[1] if lab != "oos"}) + 1  # the routes and the reject class
    max_terms = max(1000, _LEX_PARAMS // (2 * k))
    import sklearn

    report: dict[str, Any] = {
        "load_before": _load(),
        "cpus": os.cpu_count(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "scikit_learn": sklearn.__version__,
    }
    _out(f"# TF-IDF lexicon vs scikit-learn {sklearn.__version__} TfidfVectorizer ({report['load_before']})")
    _out("## 1. install")
    report["install"] = bench_install()
    _out(json.dumps(report["install"], indent=1))
    _out("## 2. speed")
    report["speed"] = bench_speed(vocab, queries, max_terms, args.single)
    _out(json.dumps(report["speed"], indent=1))
    _out("## 3. agreement")
    report["agreement"] = bench_agreement(vocab, queries, max_terms)
    _out(json.dumps(report["agreement"], indent=1))
    if args.accuracy:
        _out("## 3b. fitted router on CLINC150 (train + val -> test)")
        report["accuracy"] = bench_accuracy(args.data)
    report["load_after"] = _load()
    _out(f"# done ({report['load_after']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
