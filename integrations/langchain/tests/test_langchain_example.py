from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langchain_runnable_router.py"


def test_runnable_router_example_sends_each_message_to_its_chain(lc_encoder):
    main = runpy.run_path(str(EXAMPLE))["main"]
    answers = [answer for _, answer in main(lc_encoder)]
    assert [a.split("]")[0] + "]" for a in answers] == ["[billing]", "[shipping]", "[tech]", "[general]"]
