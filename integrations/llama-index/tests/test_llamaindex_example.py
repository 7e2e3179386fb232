from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "llamaindex_router_query_engine.py"


def test_router_query_engine_example_routes_every_question(li_encoder):
    main = runpy.run_path(str(EXAMPLE))["main"]
    results = main(li_encoder)
    assert [engine for _, engine, _ in results] == ["billing", "shipping", "hr", "hr"]
    assert all(reason.startswith("synaptoroute: matched") for _, _, reason in results[:3])
    assert "using the fallback 'hr'" in results[3][2]
