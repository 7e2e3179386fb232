"""The cascade (``encoder="cascade"``) against the transformer alone, and against synaptoroute 0.4.1.

Per data set in ``--data`` (CLINC150 with its out-of-scope queries, Banking77, HWU64): one router
with the cascade encoder is fitted on the train split (the validation split, when there is one,
chooses the fit's settings, as in ``benchmarks.accuracy``; the test split chooses nothing). Its
test decisions are taken twice: with the static tier closed (the transformer-only decision: the
same fitted policy, the same index) and with the fitted gate. Reported: the share of test
queries the static tier answered, accuracy and out-of-scope recall of both, the share and
accuracy at other margins (same floor), and, with the real model, end-to-end single-query p50
and batched q/s of both routers booted from the same store (alternated, same run), with the load
average. The transformer's embeddings of the data sets are cached in ``--cache``.

``--calibrate`` measures the default gate of unfitted routers (train stored, validation as
queries; Banking77, without a validation split, keeps a seeded 20% of train as queries).

``--headline`` runs 10,000 routes x 5 (the workload of ``benchmarks.scale``) against
synaptoroute 0.4.1 run end to end with the same bundled model (``benchmarks.peers`` in its own
venv), batched and single, in one run.

Run: ``uv run --group bench python -m benchmarks.cascade --data ../shared/data [--headline]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .report import update_section, write_manifest

CACHE = Path(".bench-cache") / "cascade"
NEVER = (2.0, 2.0)  # a gate no cosine passes: the static tier closed


def read_split(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def cached_encoder(cache: Path, name: str) -> Any:
    """The bundled model behind a text cache kept in ``cache/emb-<name>.npz``."""
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    from .accuracy import CachedEncoder

    enc = CachedEncoder(BundledEncoder(lazy_load=True))
    path = cache / f"emb-{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            for t, v, f in zip(z["texts"].tolist(), z["vectors"], z["features"], strict=True):
                enc._cache[t], enc._features[t] = v, f
    enc.saved = len(enc._features)  # type: ignore[attr-defined]
    return enc


def save_cache(enc: Any, cache: Path, name: str) -> None:
    if len(enc._features) == enc.saved:
        return
    texts = list(enc._features)
    np.savez(
        cache / f"emb-{name}.npz",
        texts=np.array(texts),
        vectors=np.stack([enc._cache[t] for t in texts]),
        features=np.stack([enc._features[t] for t in texts]),
    )


def load_set(d: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"train": read_split(d / "train.jsonl"), "test": read_split(d / "test.jsonl")}
    out["val"] = read_split(d / "val.jsonl") if (d / "val.jsonl").exists() else None
    out["oos"] = "oos" if "oos" in set(out["train"][1]) else None
    return out


def scores(pred: Sequence[str | None], truth: Sequence[str], oos: str | None) -> dict[str, float | None]:
    """Accuracy (a refusal is right for an out-of-scope query) and out-of-scope recall."""
    ok = [(p is None and t == oos) or p == t for p, t in zip(pred, truth, strict=True)]
    o = [p is None for p, t in zip(pred, truth, strict=True) if oos is not None and t == oos]
    return {"accuracy": sum(ok) / len(ok), "oos_recall": (sum(o) / len(o)) if o else None}


def static_view(router: Any, texts: list[str]) -> tuple[list[str | None], np.ndarray, np.ndarray]:
    """The static tier's best route, score and lead for each text (the gate wide open)."""
    from synaptoroute_agents.router.cascade import Gate

    tier = router._cascade
    keep = tier.gate
    tier.gate = Gate(-1.0, 0.0)
    try:
        names: list[str | None] = []
        best, lead = [], []
        for s in range(0, len(texts), 512):
            tables = router._tables
            token = tables.enter()
            try:
                got, _ = tier.split(tables, texts[s : s + 512], 1, router.neighbors)
            finally:
                tables.leave(token)
            for m in got:
                names.append(None if m is None else m.name)
                best.append(0.0 if m is None else m.score)
                lead.append(0.0 if m is None else m.margin)
    finally:
        tier.gate = keep
    return names, np.array(best), np.array(lead)


def head_view(router: Any, texts: list[str]) -> dict[str, np.ndarray] | None:
    """The fitted static head's best route, probability, lead and centroid cosine for each text."""
    tier = router._cascade
    head = tier.gate.head
    if head is None:
        return None
    S = tier.encoder.static_embed(texts)
    P = head.probs(S, texts)
    order = np.argsort(-P, axis=1)[:, :2]
    p = np.take_along_axis(P, order, axis=1)
    c1 = order[:, 0]
    n = head.n_routes
    eligible = c1 < n
    cos = np.where(eligible, np.einsum("ij,ij->i", S, head.centroids[np.minimum(c1, n - 1)]), -1.0)
    names = np.array([head.routes[c] if c < n else "" for c in c1.tolist()], dtype=object)
    return {"name": names, "p1": p[:, 0], "lead": p[:, 0] - p[:, 1], "cos": cos, "eligible": eligible}


def decisions(router: Any, texts: list[str]) -> tuple[list[str | None], list[str | None]]:
    out = [m for s in range(0, len(texts), 512) for m in router.route_batch(texts[s : s + 512])]
    return [m.name for m in out], [m.tier for m in out]


def accuracy_run(name: str, d: Path, cache: Path) -> tuple[dict[str, Any], Path]:
    from synaptoroute_agents import SemanticRouter
    from synaptoroute_agents.encoders.cascade import CascadeEncoder
    from synaptoroute_agents.router import cascade as cascade_mod
    from synaptoroute_agents.router.cascade import Gate

    data = load_set(d)
    enc = cached_encoder(cache, name)
    db = cache / f"cascade-{name}.db"
    # the held-out arrays fit chose the gate from: other budgets on them are reported (not chosen)
    seen: dict[str, Any] = {}
    choose = cascade_mod.choose_gate

    def recording(*args: Any, **kw: Any) -> Any:
        seen["args"], seen["kw"] = args, kw
        return choose(*args, **kw)

    cascade_mod.choose_gate = recording
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    res: dict[str, Any] = {}
    with SemanticRouter(CascadeEncoder(enc), db) as router:
        t0 = time.perf_counter()
        summary = router.fit(
            *data["train"], out_of_scope_label=data["oos"], validation=data["val"], create_routes=True
        )
        res["fit_seconds"] = time.perf_counter() - t0
        cascade_mod.choose_gate = choose
        if "args" in seen:
            a = list(seen["args"])
            cv: list[dict[str, Any]] = []
            for acc_b, unseen_b in (
                (0.003, 0.0),
                (0.003, 0.003),
                (0.003, 0.01),
                (0.005, 0.003),
                (0.005, 0.01),
            ):
                g = choose(a[0], a[1], a[2], a[3], a[4], a[5], acc_b, a[7], unseen_b)
                if g is None:
                    cv.append({"budget": acc_b, "unseen_budget": unseen_b, "share": 0.0})
                    continue
                p1, lead, el, cos, _loss, forb = a[:6]
                ins = ~forb & ~a[7]
                ok = el & (p1 >= g.floor) & (lead >= g.margin) & (cos >= g.in_scope)
                cv.append(
                    {
                        "budget": acc_b,
                        "unseen_budget": unseen_b,
                        "share": float(ok[ins].mean()),
                        "gate": [g.floor, g.margin, g.in_scope],
                    }
                )
            res["cv_budgets"] = cv
        tier = router._cascade
        assert tier is not None
        gate = tier.gate
        res["gate"] = {
            "floor": gate.floor,
            "margin": gate.margin,
            "in_scope": gate.in_scope,
            "source": gate.source,
            "head": gate.head is not None,
        }
        names = summary.route_names
        texts, labels = data["test"]
        truth = [names.get(lab, lab) if lab != data["oos"] else lab for lab in labels]
        tier.gate = Gate(*NEVER)
        t_pred, _ = decisions(router, texts)
        tier.gate = gate
        c_pred, tiers = decisions(router, texts)
        res["n_test"] = len(texts)
        res["static_share"] = tiers.count("static") / len(tiers)
        res["transformer_only"] = scores(t_pred, truth, data["oos"])
        res["cascade"] = scores(c_pred, truth, data["oos"])
        res["agreement"] = sum(a == b for a, b in zip(t_pred, c_pred, strict=True)) / len(texts)
        hv = head_view(router, texts)
        rows = []
        if hv is not None:
            for c in (gate.in_scope, -1.0):
                for f in sorted({round(gate.floor, 3), 0.5, 0.7, 0.8, 0.9, 0.95}):
                    ok = hv["eligible"] & (hv["p1"] >= f) & (hv["lead"] >= gate.margin) & (hv["cos"] >= c)
                    pred = [hv["name"][i] if ok[i] else t_pred[i] for i in range(len(texts))]
                    rows.append(
                        {
                            "floor": f,
                            "margin": gate.margin,
                            "in_scope": c,
                            "static_share": float(ok.mean()),
                            **scores(pred, truth, data["oos"]),
                        }
                    )
        res["by_gate"] = rows
    save_cache(enc, cache, name)
    return res, db


def timing_run(db: Path, texts: list[str], n_single: int, rounds: int = 3) -> dict[str, Any]:
    """Both routers on the same store with the real model, alternated: single p50, batched q/s."""
    from synaptoroute_agents import SemanticRouter
    from synaptoroute_agents.encoders.bundled import BundledEncoder
    from synaptoroute_agents.encoders.cascade import CascadeEncoder

    model = BundledEncoder()
    out: dict[str, Any] = {"load_start": os.getloadavg()[0]}
    with SemanticRouter(model, db) as rt, SemanticRouter(CascadeEncoder(model), db) as rc:
        out["boot"] = {"transformer": rt.boot_info, "cascade": rc.boot_info}
        for q in texts[:10]:
            rt.route(q)
            rc.route(q)
        single: dict[str, list[float]] = {"transformer": [], "cascade": []}
        for q in texts[:n_single]:
            for key, r in (("transformer", rt), ("cascade", rc)):
                t0 = time.perf_counter()
                r.route(q)
                single[key].append((time.perf_counter() - t0) * 1e3)
        out["single_p50_ms"] = {k: statistics.median(v) for k, v in single.items()}
        secs: dict[str, list[float]] = {"transformer": [], "cascade": []}
        for _ in range(rounds):
            for key, r in (("transformer", rt), ("cascade", rc)):
                t0 = time.perf_counter()
                for s in range(0, len(texts), 64):
                    r.route_batch(texts[s : s + 64])
                secs[key].append(time.perf_counter() - t0)
        out["batched_qps"] = {k: len(texts) / statistics.median(v) for k, v in secs.items()}
        out["batched_ratio"] = statistics.median(
            a / b for a, b in zip(secs["transformer"], secs["cascade"], strict=True)
        )
        out["cascade_stats"] = rc.stats()["cascade"]
    out["load_end"] = os.getloadavg()[0]
    return out


def calibrate(data_dir: Path, cache: Path) -> dict[str, Any]:
    """The default gate: unfitted routers, train stored, validation queries, every set at once."""
    from synaptoroute_agents import Route, SemanticRouter
    from synaptoroute_agents.encoders.cascade import CascadeEncoder
    from synaptoroute_agents.router.cascade import ACCURACY_BUDGET, Gate

    per: dict[str, Any] = {}
    for d in sorted(p for p in data_dir.iterdir() if (p / "train.jsonl").exists()):
        data = load_set(d)
        tr_x, tr_y = data["train"]
        if data["val"] is not None:
            va_x, va_y = data["val"]
        else:
            rng = np.random.default_rng(0)
            hold = set(rng.choice(len(tr_x), len(tr_x) // 5, replace=False).tolist())
            va_x = [t for i, t in enumerate(tr_x) if i in hold]
            va_y = [t for i, t in enumerate(tr_y) if i in hold]
            tr_x = [t for i, t in enumerate(tr_x) if i not in hold]
            tr_y = [t for i, t in enumerate(tr_y) if i not in hold]
        enc = cached_encoder(cache, d.name)
        by: dict[str, list[str]] = {}
        for t, y in zip(tr_x, tr_y, strict=True):
            if y != data["oos"]:
                by.setdefault(y.replace("?", "").replace(" ", "_"), []).append(t)
        with SemanticRouter(CascadeEncoder(enc)) as r:
            r.add_many([Route(n, tuple(dict.fromkeys(ts))) for n, ts in sorted(by.items())])
            assert r._cascade is not None
            r._cascade.gate = Gate(*NEVER)
            t_pred, _ = decisions(r, va_x)
            s_name, s_best, s_lead = static_view(r, va_x)
        save_cache(enc, cache, d.name)
        oos = np.array([y == data["oos"] for y in va_y])
        truth = [y.replace("?", "").replace(" ", "_") for y in va_y]
        s_ok = np.array([a is not None and a == t for a, t in zip(s_name, truth, strict=True)])
        t_ok = np.array([a is not None and a == t for a, t in zip(t_pred, truth, strict=True)])
        # what answering statically costs against the transformer-only decision
        loss = (~s_ok & t_ok).astype(float) - (s_ok & ~t_ok)
        per[d.name] = (s_best, s_lead, loss, oos)
    floors = np.round(np.arange(0.50, 1.0001, 0.01), 2)
    margins = np.round(np.arange(0.0, 0.5001, 0.01), 2)
    best: tuple[float, float, float, dict[str, float]] | None = None
    for f in floors:
        for m in margins:
            shares: dict[str, float] = {}
            ok = True
            for name, (b, ld, loss, oos) in per.items():
                p = (b >= f) & (ld >= m)
                if (p & oos).any() or (loss[p & ~oos].sum() > ACCURACY_BUDGET * (~oos).sum()):
                    ok = False
                    break
                shares[name] = float(p[~oos].mean())
            if ok:
                mean = float(np.mean(list(shares.values())))
                if best is None or mean > best[0]:
                    best = (mean, float(f), float(m), shares)
                break
    if best is None:
        return {"gate": None}
    return {"gate": {"floor": best[1], "margin": best[2]}, "mean_share": best[0], "shares": best[3]}


def headline(cache: Path, extra: list[Path], n_single: int) -> dict[str, Any]:
    """10,000 routes x 5: the cascade (unfitted, default gate), the transformer alone, the peer."""
    from synaptoroute_agents.encoders.bundled import BundledEncoder

    from .scale import build_store, ensure_peer_venv, run_peer, utterance_vectors, workload

    n = 10_000
    w = workload(n, cache, 1000)
    wl_path = cache / f"workload-{n}.json"
    texts = [u for us in w["routes"].values() for u in us]
    model = BundledEncoder()
    vecs, source = utterance_vectors(texts, model, cache, f"{n}", extra, 10**9)
    db = cache / f"headline-{n}.db"
    if not db.exists():
        build_store(db, w["routes"], vecs, model.model_id)
    emb = cache / f"emb-peers-{n}.npz"
    if not emb.exists():
        np.savez(emb, texts=np.array(texts), vectors=vecs)
    queries: list[str] = w["queries"]
    out: dict[str, Any] = {"routes": n, "vectors": len(texts), "vector_source": source}
    out["ours"] = timing_run(db, queries, n_single)
    from synaptoroute_agents import SemanticRouter
    from synaptoroute_agents.encoders.cascade import CascadeEncoder
    from synaptoroute_agents.router.cascade import Gate

    expected = w["expected"]
    with SemanticRouter(CascadeEncoder(model), db) as rc:
        c_pred, tiers = decisions(rc, queries)
        assert rc._cascade is not None
        rc._cascade.gate = Gate(*NEVER)
        t_pred, _ = decisions(rc, queries)
        s_name, s_best, s_lead = static_view(rc, queries)
        # the ceiling: every query answered by the static tier (gate wide open)
        rc._cascade.gate = Gate(-1.0, 0.0)
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            for s in range(0, len(queries), 64):
                rc.route_batch(queries[s : s + 64])
            runs.append(time.perf_counter() - t0)
        out["static_only_batched_qps"] = len(queries) / statistics.median(runs)
        top_s = [(p, e) for p, e in zip(s_name, expected, strict=True) if e is not None]
        out["static_only_accuracy_vs_expected"] = sum(p == e for p, e in top_s) / len(top_s)
    top = [(p, e) for p, e in zip(c_pred, expected, strict=True) if e is not None]
    out["accuracy_vs_expected"] = {
        "cascade": sum(p == e for p, e in top) / len(top),
        "transformer_only": sum(p == e for p, e in zip(t_pred, expected, strict=True) if e is not None)
        / len(top),
    }
    out["static_share"] = tiers.count("static") / len(tiers)
    out["by_margin"] = []
    for f in (0.7, 0.8, 0.87, 0.9):
        for m in (0.0, 0.02, 0.05, 0.1, 0.2):
            ok = (s_best >= f) & (s_lead >= m)
            pred = [s_name[i] if ok[i] else t_pred[i] for i in range(len(queries))]
            acc = sum(p == e for p, e in zip(pred, expected, strict=True) if e is not None) / len(top)
            out["by_margin"].append(
                {"floor": f, "margin": m, "static_share": float(ok.mean()), "accuracy": acc}
            )
    py = ensure_peer_venv(cache)
    peer = run_peer(py, "synaptoroute", wl_path, emb, cache / f"peer-synaptoroute-{n}.json", n_single)
    peer.pop("top1", None)
    out["peer"] = {k: peer.get(k) for k in ("single", "batch", "accuracy", "loadavg_start_end", "error")}
    pq = max((v.get("qps", 0.0) for v in (peer.get("batch") or {}).values()), default=0.0)
    out["peer_batched_qps"] = pq
    out["cascade_over_peer"] = out["ours"]["batched_qps"]["cascade"] / pq if pq else None
    out["transformer_over_peer"] = out["ours"]["batched_qps"]["transformer"] / pq if pq else None
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def markdown_headline(h: dict[str, Any], cmd: str) -> str:
    o = h["ours"]
    lines = [
        "## Cascade at 10,000 routes x 5 against synaptoroute 0.4.1",
        "",
        f"Command: `{cmd}`",
        "",
        f"Unfitted routers (the default gate), the same bundled model on both sides "
        f"({h['vector_source']} utterance vectors), one run, 2 cores; the peer end to end through "
        "`benchmarks.peers` in its own venv (batched: its `aquery` micro-batcher); ours `route_batch` "
        "in chunks of 64, the cascade and the transformer-only router alternated on the same store.",
        "",
        "| | cascade | transformer only | synaptoroute 0.4.1 |",
        "|---|---|---|---|",
        f"| batched e2e q/s | {o['batched_qps']['cascade']:.0f} | {o['batched_qps']['transformer']:.0f} "
        f"| {h['peer_batched_qps']:.0f} |",
        f"| ratio to the peer | {h['cascade_over_peer'] or 0:.2f}x | {h['transformer_over_peer'] or 0:.2f}x | 1 |",
        f"| single e2e p50 ms | {o['single_p50_ms']['cascade']:.2f} | {o['single_p50_ms']['transformer']:.2f} "
        f"| {(h['peer'].get('single') or {}).get('p50_ms', 0):.2f} |",
        f"| top-1 accuracy vs expected | {_pct(h['accuracy_vs_expected']['cascade'])} "
        f"| {_pct(h['accuracy_vs_expected']['transformer_only'])} "
        f"| {_pct((h['peer'].get('accuracy') or {}).get('top1_accuracy'))} |",
        f"| answered statically | {100 * h['static_share']:.1f}% | | |",
        f"| static tier alone (gate open): batched q/s, accuracy | {h['static_only_batched_qps']:.0f}, "
        f"{_pct(h['static_only_accuracy_vs_expected'])} | | |",
        f"| load (1 min) start / end | {o['load_start']:.1f} / {o['load_end']:.1f} | | "
        f"{' / '.join(f'{x[0]:.1f}' for x in h['peer'].get('loadavg_start_end') or [])} |",
        "",
        "Other gates on the same queries (floor / margin: share answered statically / top-1 accuracy): "
        + ", ".join(
            f"{r['floor']}/{r['margin']}: {100 * r['static_share']:.0f}% / {_pct(r['accuracy'])}"
            for r in h["by_margin"]
        ),
    ]
    return "\n".join(lines) + "\n"


def markdown(fig: dict[str, Any], cmd: str) -> str:
    lines = [
        '## Cascade: the static tier in front of the transformer (`encoder="cascade"`), per data set',
        "",
        f"Command: `{cmd}`",
        "",
        "Fitted on train (validation chooses the fit's settings), test chooses nothing. "
        "Transformer only = the same fitted router with the static tier closed. "
        "The static tier's head (softmax on static rows and lexical terms) and its gate are fitted in `fit` "
        "by cross-validation (at most 0.3 points of accuracy lost against the transformer-only decision, "
        "none of the fit's out-of-scope examples and at most 0.3% of the simulated unseen-route queries "
        "the transformer refuses let through). "
        "Timings: both routers booted from the same store with the real model, alternated, 2 cores.",
        "",
        "| data set | gate (floor / margin / in-scope cosine) | answered statically | accuracy cascade / transformer | "
        "oos recall cascade / transformer | single p50 ms cascade / transformer | batched q/s cascade / "
        "transformer | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in fig.get("sets", {}).items():
        t = r.get("timing", {})
        sp, bq = t.get("single_p50_ms", {}), t.get("batched_qps", {})
        lines.append(
            f"| {name} | {r['gate']['floor']:.3f} / {r['gate']['margin']:.3f} / {r['gate'].get('in_scope', -1):.3f} "
            f"| {100 * r['static_share']:.1f}% "
            f"| {_pct(r['cascade']['accuracy'])} / {_pct(r['transformer_only']['accuracy'])} "
            f"| {_pct(r['cascade']['oos_recall'])} / {_pct(r['transformer_only']['oos_recall'])} "
            f"| {sp.get('cascade', 0):.2f} / {sp.get('transformer', 0):.2f} "
            f"| {bq.get('cascade', 0):.0f} / {bq.get('transformer', 0):.0f} "
            f"| {t.get('load_start', 0):.1f}-{t.get('load_end', 0):.1f} |"
        )
    lines += [
        "",
        "Other gates on the same test decisions (reported, never chosen from; the fitted margin; "
        "head probability floor / in-scope cosine floor: share answered statically / accuracy / oos recall):",
        "",
    ]
    for name, r in fig.get("sets", {}).items():
        cells = ", ".join(
            f"{row['floor']:.2f}/{row.get('in_scope', -1):.2f}: {100 * row['static_share']:.0f}% / {_pct(row['accuracy'])}"
            + (f" / {_pct(row['oos_recall'])}" if row["oos_recall"] is not None else "")
            for row in r["by_gate"]
        )
        lines.append(f"- {name}: {cells}")
    lines += [
        "",
        "Share of the fit examples the gate `fit` would choose answers statically at other budgets, "
        "by cross-validation inside `fit` (accuracy budget / unseen-route budget: share):",
        "",
    ]
    for name, r in fig.get("sets", {}).items():
        cells = ", ".join(
            f"{c['budget']:.3f}/{c['unseen_budget']:.3f}: {100 * c['share']:.1f}%"
            for c in r.get("cv_budgets", [])
        )
        lines.append(f"- {name}: {cells}")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--sets", default="", help="comma-separated subset of the data sets")
    p.add_argument("--calibrate", action="store_true", help="measure the unfitted default gate only")
    p.add_argument(
        "--headline", action="store_true", help="only 10,000 routes x 5 against synaptoroute 0.4.1"
    )
    p.add_argument("--embed-cache", type=Path, action="append", default=[], help="extra text->vector .npz")
    p.add_argument("--queries", type=int, default=1000, help="test queries timed per set")
    p.add_argument("--single", type=int, default=200)
    p.add_argument("--no-timing", action="store_true")
    p.add_argument(
        "--timing-from",
        type=Path,
        help="a manifest of a --no-timing run: time its fitted stores (in --cache) instead of fitting again",
    )
    p.add_argument("--manifest", default="bench-results/cascade.json")
    p.add_argument("--doc", default="docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("synaptoroute_agents.router.cascade").setLevel(logging.INFO)
    shown = [
        ("../shared/data" if "shared/data" in a else "<dir>") if a.startswith("/") else a
        for a in (sys.argv[1:] if argv is None else list(argv))
    ]
    cmd = "uv run --group bench python -m benchmarks.cascade " + " ".join(shown)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.calibrate:
        cal = calibrate(args.data, args.cache)
        print(json.dumps(cal, indent=1))
        write_manifest(args.manifest, "cascade-calibrate", cal, command=cmd)
        return 0
    if args.headline:
        print("[headline] 10,000 routes x 5 against synaptoroute 0.4.1 ...", flush=True)
        h = headline(args.cache, args.embed_cache, min(args.single, 100))
        print(json.dumps(h, indent=1, default=str)[:4000], flush=True)
        write_manifest(args.manifest, "cascade-headline", h, command=cmd)
        if args.doc:
            update_section("cascade-headline", markdown_headline(h, cmd), args.doc)
        return 0
    fig: dict[str, Any] = {"sets": {}}
    want = {s.strip() for s in args.sets.split(",") if s.strip()}
    if args.timing_from is not None:
        fig = json.loads(args.timing_from.read_text())["figures"]
        for name, res in fig["sets"].items():
            texts = read_split(args.data / name / "test.jsonl")[0]
            pick = np.random.default_rng(0).permutation(len(texts))[: args.queries]
            print(f"[{name}] timing ...", flush=True)
            res["timing"] = timing_run(
                args.cache / f"cascade-{name}.db", [texts[i] for i in pick], args.single
            )
            print(json.dumps(res["timing"], default=str)[:1500], flush=True)
        write_manifest(args.manifest, "cascade", fig, command=cmd)
        if args.doc:
            update_section("cascade", markdown(fig, cmd), args.doc)
        return 0
    for d in sorted(x for x in args.data.iterdir() if (x / "train.jsonl").exists()):
        if want and d.name not in want:
            continue
        print(f"[{d.name}] fit and test decisions ...", flush=True)
        res, db = accuracy_run(d.name, d, args.cache)
        if not args.no_timing:
            texts = read_split(d / "test.jsonl")[0]
            rng = np.random.default_rng(0)
            pick = rng.permutation(len(texts))[: args.queries]
            print(f"[{d.name}] timing ...", flush=True)
            res["timing"] = timing_run(db, [texts[i] for i in pick], args.single)
        fig["sets"][d.name] = res
        print(json.dumps(res, indent=1, default=str)[:3000], flush=True)
    write_manifest(args.manifest, "cascade", fig, command=cmd)
    if args.doc:
        update_section("cascade", markdown(fig, cmd), args.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
