"""The benchmarks' entry points (outside the package) and the bulk store import they rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.chaos import main as chaos_main
from synaptoroute_agents import DuplicateRouteError, Route, RouteStore, SemanticRouter
from synaptoroute_agents.cli import main
from synaptoroute_agents.testing import HashEncoder


def test_the_command_points_at_the_benchmarks_outside_the_package(capsys) -> None:
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m benchmarks.scale" in err and "docs/BENCHMARKS.md" in err
    assert main(["bench", "chaos", "--json"]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "usage"


def test_bench_chaos_runs_and_writes_its_manifest_and_section(tmp_path: Path) -> None:
    manifest, doc = tmp_path / "chaos.json", tmp_path / "BENCH.md"
    rc = chaos_main(
        [
            "--seconds", "2", "--db", str(tmp_path / "c.db"), "--writers", "3",
            "--readers", "2", "--async-readers", "2", "--manifest", str(manifest), "--doc", str(doc),
        ]
    )  # fmt: skip
    assert rc == 0
    figures = json.loads(manifest.read_text())["figures"]
    assert figures["problems"] == [] and figures["unexpected"] == []
    assert figures["mutations_ok"] > 0
    assert "<!-- BEGIN chaos -->" in doc.read_text()


def test_add_routes_is_one_all_or_nothing_transaction(store_url: str) -> None:
    enc = HashEncoder()
    store = RouteStore(store_url)
    routes = [Route(f"r{i}", (f"hello {i}", f"world {i}")) for i in range(5)]
    out = store.add_routes(routes, [enc.embed(r.utterances) for r in routes], enc.model_id)
    assert [len(ids) for ids, _v in out] == [2] * 5
    assert [v for _ids, v in out] == sorted(v for _ids, v in out)
    with pytest.raises(DuplicateRouteError):
        store.add_routes(
            [Route("fresh", ("new one",)), Route("r3", ("dup",))],
            [enc.embed(["new one"]), enc.embed(["dup"])],
            enc.model_id,
        )
    assert store.get_route("fresh") is None  # nothing of the failed batch was kept
    store.close()
    with SemanticRouter(encoder=enc, store=store_url) as r:
        assert len(r) == 5 and len(r.index) == 10 and r.verify() == []
        assert r.route("hello 3").name == "r3"
        np.testing.assert_allclose(r.index.search(enc.embed(["world 4"]), 1)[0][0, 0], 1.0, atol=1e-5)


def test_saved_hnsw_index_boots_without_a_rebuild_and_catches_up(tmp_path: Path, caplog) -> None:
    import logging

    enc = HashEncoder()
    db = str(tmp_path / "h.db")
    with SemanticRouter(encoder=enc, store=db, index="hnsw") as r:
        for i in range(30):
            r.add(Route(f"r{i}", (f"topic{i} alpha", f"topic{i} beta")))
        assert r.save_index()
        # changes after the save: the next boot must apply them to the saved copy
        r.delete("r3")
        r.update(Route("r4", ("topic4 gamma",)))
        r.add(Route("late", ("a late route",)))
    with caplog.at_level(logging.INFO, logger="synaptoroute_agents.router"):
        r2 = SemanticRouter(encoder=enc, store=db, index="hnsw")
    assert "approximate index loaded from the store" in caplog.text
    with r2:
        assert r2.verify() == []
        assert len(r2.index) == 2 * 28 + 1 + 1
        assert r2.route("topic4 gamma").name == "r4"
        assert r2.route("a late route").name == "late"
        assert r2.route("topic3 alpha").name != "r3"
        assert r2.route("topic7 beta").name == "r7"
        r2.index.compact()  # folding the caught-up delta into a loaded base works too
        assert r2.verify() == [] and r2.route("a late route").name == "late"
    # the flat index has nothing to save; a damaged copy is ignored (rebuilt)
    with SemanticRouter(encoder=enc, store=db) as flat:
        assert flat.save_index() is False
    store = RouteStore(db)
    store.save_cache_blob(VectorIndexKey.hnsw(), b"not an index", enc.model_id, 0)
    store.close()
    with SemanticRouter(encoder=enc, store=db, index="hnsw") as r3:
        assert r3.verify() == [] and r3.route("topic7 beta").name == "r7"


class VectorIndexKey:
    @staticmethod
    def hnsw() -> str:
        from synaptoroute_agents import VectorIndex

        return VectorIndex(384, kind="hnsw").cache_key()


def test_benchmarks_write_the_docs_at_the_repository_root() -> None:
    from benchmarks.report import DEFAULT_DOC, MANIFESTS

    root = Path(__file__).resolve().parents[1]
    assert root / "docs" / "BENCHMARKS.md" == DEFAULT_DOC and DEFAULT_DOC.is_file()
    assert root / "docs" / "benchmarks" == MANIFESTS and MANIFESTS.is_dir()


def _tier_figures(routes: int, boot_s: float) -> dict[str, object]:
    lat = {"p50_ms": 5.0, "p99_ms": 9.0}
    ours = {
        "single_e2e": lat,
        "single_encoder_alternated": {"p50_ms": 4.8},
        "single_added_paired_p50_ms": 0.25,
        "batched_e2e_qps": 600.0,
        "async_e2e_qps": 500.0,
        "top1_accuracy_vs_expected": 0.93,
        "loadavg_start_end": [1.0, 1.2],
    }
    return {
        "routes": routes,
        "vectors": routes * 5,
        "boot": {"boot_s": boot_s},
        "boot_with_model": {"encoder_load_s": 0.3, "rss_mb": 400.0},
        "add_route": {"e2e": {"p50_ms": 12.0}, "encoder_5_utterances": {"p50_ms": 10.0}},
        "index": {"flat": ours},
    }


def test_the_one_scale_table_computes_its_ratios_from_the_run_and_checks_the_boot() -> None:
    from benchmarks.scale import md_one_table

    peer = {
        "peer_version": "0.4.1",
        "single": {"p50_ms": 10.0, "p99_ms": 20.0},
        "batch": {"aquery_gather": {"qps": 300.0}},
        "accuracy": {"top1_accuracy": 0.9},
        "memory": {"rss_after_build_mb": 500.0},
        "build": {"seconds": 4.0},
        "loadavg_start_end": [[1.0], [1.1]],
    }
    fig = {
        "machine_note": "2 cores, load average 1.0 at start",
        "tiers": {"2k": _tier_figures(2000, 0.1), "50k": _tier_figures(50_000, 1.4)},
        "peers": {"2k": {"synaptoroute": peer, "semantic-router": {"error": "too slow"}}},
        "wall_seconds": 600.0,
        "loadavg_end": 1.5,
    }
    md = md_one_table(fig, "cmd")
    ours_2k = next(
        line for line in md.splitlines() if line.startswith("| 10,000 (2,000) | **synaptoroute-agents")
    )
    assert "| 2.00x | 2.00x |" in ours_2k  # 600 / 300 batched, 10 / 5 single p50
    assert "600 (route_batch)" in ours_2k and "| 4.80 (+0.25) |" in ours_2k
    assert "| 10,000 (2,000) | synaptoroute 0.4.1 | 10.00 / 20.00 |" in md and "| 1.00x | 1.00x |" in md
    assert "semantic-router | failed: 'too slow'" in md
    assert "cold boot at 50,000 x 5 (no model load): 1.40 s (target <= 1 s: NOT met)" in md
    assert "wall time 10 min" in md


def test_the_quantized_default_rule_needs_every_data_set_within_its_points() -> None:
    from benchmarks.quantized import DEFAULT_RULE_POINTS, default_rule, fit_markdown

    assert default_rule({"clinc150": 0.1, "banking77": -0.3, "hwu64": -0.29})["passes"]
    assert not default_rule({"clinc150": 0.1, "banking77": -0.31, "hwu64": 0.0})["passes"]
    assert not default_rule({"clinc150": 0.1, "banking77": 0.2})["passes"]  # a data set missing
    assert not default_rule({})["passes"]

    def result(delta: float) -> dict[str, object]:
        speed = {
            "single_p50_ms": {"float": 6.0, "int8": 4.0},
            "batched_qps": {"float": 500.0, "int8": 900.0},
            "single_speed_ratio": 1.5,
            "batched_speed_ratio": 1.8,
            "loadavg": 1.0,
        }
        side = {"accuracy": 90.0, "oos_recall": None}
        return {
            "n_fit": 100,
            "n_val": 0,
            "float": side,
            "int8": {**side, "accuracy": 90.0 + delta},
            "delta_points": delta,
            "speed": speed,
        }

    for delta, passes in ((-0.2, True), (-0.5, False)):
        out = {
            "cpu": {"int8_support": True, "why": "avx512_vnni", "auto_picks": "int8"},
            "sets": {"a": result(0.1), "b": result(delta)},
            "rule": {"max_loss_points": DEFAULT_RULE_POINTS, "worst_delta_points": delta, "passes": passes},
            "loadavg_start": 1.0,
            "loadavg_end": 1.0,
        }
        md = fit_markdown(out, "cmd")
        assert ("stays float" in md) is not passes
        assert f"**{delta:+.2f} points**" in md and "picks\n**int8**" in md
        assert "| 6.00 / 4.00 | 500 / 900 | 1.50x / 1.80x |" in md  # int8 speed-up: float time / int8 time


def test_the_stage_gap_section_shows_both_paired_differences_per_tier() -> None:
    from benchmarks.scale import md_stage_gap

    def side(added: float) -> dict[str, float]:
        return {"encoder_p50_ms": 4.0, "added_paired_p50_ms": added, "added_paired_p90_ms": added * 3}

    fig = {
        "omp_wait_policy": "PASSIVE",
        "loadavg_start": 2.0,
        "screen_min": 4096,
        "2k": {
            "vectors": 10_000,
            "stage": "PqScreen",
            "loadavg_start_end": [2.0, 2.5],
            "top1_agreement": 1.0,
            "exact scan": side(1.5),
            "default": side(0.29),
        },
        "loadavg_end": 3.0,
    }
    md = md_stage_gap(fig, "cmd")
    assert "| 10,000 | PqScreen | +1.50 | +0.29 | +0.87 | 4.00 | 1.000 | 2.0 / 2.5 |" in md
    assert "from 4,096 vectors" in md and "OMP_WAIT_POLICY=PASSIVE" in md and "Command: `cmd`" in md
    assert "load average 2.0 at start, 3.0 at the end" in md


def test_an_unknown_scale_tier_is_a_usage_error_naming_the_tiers(capsys) -> None:
    from benchmarks.scale import main as scale_main

    with pytest.raises(SystemExit) as exc:
        scale_main(["--stage-gap", "--tiers", "10k,250k"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown tier(s) 250k" in err and "1k, 2k, 10k, 50k" in err
