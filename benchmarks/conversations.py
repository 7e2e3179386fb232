"""Conversation benchmark: routes and tools on follow-up turns, with and without context.

Routes: the ten intents of the shipped CLINC150 sample (``tests/fixtures/clinc10``, train split)
and the three routes of the help-desk example (``examples/helpdesk_graph.py``). Conversations:
``benchmarks/data/conversations.jsonl`` (written for this project, CC0): two- or three-turn
conversations whose later turns are follow-ups of the first request ("and on my discover card?"),
new topics, or foreign messages that must reach the fallback (expected route null).

Each turn is decided twice: from the latest message alone, and with the engine's conversation
context (:func:`synaptoroute_agents.conversation.decide_turn`, defaults). Tools: one tool per route
(the same utterances), ``ToolSelector.select`` vs ``select_turn`` with the previous turn's tools;
a turn's tools are right when the expected tool is among them.

Run: ``uv run --group bench python -m benchmarks.conversations``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synaptoroute_agents import BundledEncoder, Route, SemanticRouter, ToolSelector, conversation
from synaptoroute_agents.conversation import ConversationOptions, decide_turn

from .report import DEFAULT_DOC, MANIFESTS, update_section, write_manifest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "conversations.jsonl"
FIXTURE = ROOT / "tests" / "fixtures" / "clinc10" / "train.jsonl"
EXAMPLE = ROOT / "examples" / "helpdesk_graph.py"
KINDS = ("first", "follow", "switch", "foreign")


def load_conversations(path: Path = DATA) -> list[list[dict[str, Any]]]:
    """Each conversation as its list of turns ``{"text", "route", "kind"}``."""
    return [json.loads(line)["turns"] for line in path.read_text().splitlines() if line.strip()]


def routes() -> list[Route]:
    """The fixture's ten intents (train utterances) and the help-desk example's routes."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for line in FIXTURE.read_text().splitlines():
        row = json.loads(line)
        if row["label"] != "oos":
            by_label[row["label"]].append(row["text"])
    spec = importlib.util.spec_from_file_location("helpdesk_graph", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [Route(name, texts) for name, texts in by_label.items()] + list(module.ROUTES)


def run(context_turns: int = 2) -> dict[str, Any]:
    encoder = BundledEncoder()
    router = SemanticRouter(encoder)
    router.add_many(routes())
    selector = ToolSelector(router.routes(), encoder=encoder, k=3)
    conversations = load_conversations()
    options = ConversationOptions(context_turns=context_turns)
    plain = ConversationOptions(carry_over=False)
    counts: dict[str, dict[str, int]] = {kind: defaultdict(int) for kind in KINDS}
    misses: list[dict[str, Any]] = []
    for turns in conversations:
        texts: list[str] = []
        previous_route: dict[str, str | None] = {"alone": None, "context": None}
        previous_tools: list[str] | None = None
        for turn in turns:
            texts.append(turn["text"])
            want = turn["route"]
            c = counts[turn["kind"]]
            c["turns"] += 1
            for label, opts in (("alone", plain), ("context", options)):
                got = decide_turn(router, texts, previous=previous_route[label], options=opts).name
                previous_route[label] = got
                c[f"route_{label}"] += got == want
                if label == "context" and got != want:
                    misses.append({"turns": list(texts), "want": want, "got": got})
            if want is not None:
                c["tool_turns"] += 1
                c["tools_alone"] += want in selector.select(turn["text"])
                picked = selector.select_turn(texts, previous=previous_tools, options=options)
                c["tools_context"] += want in picked
                previous_tools = picked
    router.close()
    return {
        "conversations": len(conversations),
        "routes": len(router_names := [r.name for r in routes()]),
        "route_names": router_names,
        "context_turns": context_turns,
        "kinds": {k: dict(v) for k, v in counts.items()},
        "misses": misses,
    }


STRESS_THRESHOLDS = (0.5, 0.45, 0.4)
#: The follow-up checks compared: none (carry whenever the joined turns pass), the joined-text check
#: alone (``conversation.is_follow_up``), and both (with ``conversation.is_self_contained``, the default).
CHECKS = ("none", "joined", "full")
OOS_SAMPLE = 50


def _decide_all(router: SemanticRouter, turns: list[str], previous: str | None) -> dict[str, str | None]:
    """The route for each of :data:`CHECKS` from one decision: the engine's follow-up check is
    replaced by one that records both of its parts and lets the carry through."""
    seen: dict[str, bool] = {}

    def record(router: SemanticRouter, recent: Sequence[str], route_similarity: float) -> bool:
        vectors = router.embed(conversation.follow_up_texts(recent))
        seen["joined"] = conversation.is_follow_up(vectors)
        prototypes = conversation.prototype_vectors(router)
        seen["self_contained"] = conversation.is_self_contained(vectors[1], route_similarity, prototypes)
        return True

    saved = conversation.follows_on
    conversation.follows_on = record
    try:
        name = decide_turn(router, turns, previous=previous).name
    finally:
        conversation.follows_on = saved
    if not seen:  # the latest message decided, or nothing was carried: no check ran
        return dict.fromkeys(CHECKS, name)
    joined = name if seen["joined"] else None
    return {"none": name, "joined": joined, "full": joined if not seen["self_contained"] else None}


def stress(
    foreign: list[str] | None = None, thresholds: tuple[float, ...] = STRESS_THRESHOLDS
) -> dict[str, Any]:
    """Every first request followed directly by every foreign message (by default the set's own
    distinct foreign messages) and by its own follow-up, at several router thresholds, for each of
    :data:`CHECKS`: a request that scores high leaves the joined text above the threshold, the
    case a foreign message could stay on the old route. Counts are also kept per half of the
    conversations (even and odd positions in the file), since the checks were developed looking
    only at the even half."""
    conversations = load_conversations()
    own = foreign is None
    if foreign is None:
        foreign = sorted({t["text"] for turns in conversations for t in turns if t["kind"] == "foreign"})
    encoder = BundledEncoder()
    out: dict[str, Any] = {}
    for threshold in thresholds:
        router = SemanticRouter(encoder, threshold=threshold)
        router.add_many(routes())
        c: dict[str, int] = defaultdict(int)
        for position, turns in enumerate(conversations):
            half = ("even", "odd")[position % 2]
            request = turns[0]["text"]
            previous = router.route(request).name
            for text in foreign:
                got = _decide_all(router, [request, text], previous)
                for key in ("", f"_{half}"):
                    c[f"foreign{key}"] += 1
                    for check in CHECKS:
                        c[f"foreign_fallback_{check}{key}"] += got[check] is None
            if own and turns[1]["kind"] == "follow":
                got = _decide_all(router, [request, turns[1]["text"]], previous)
                for key in ("", f"_{half}"):
                    c[f"follow{key}"] += 1
                    for check in CHECKS:
                        c[f"follow_right_{check}{key}"] += got[check] == turns[1]["route"]
        out[str(threshold)] = dict(c)
        router.close()
    return out


def out_of_scope_texts(data: Path, n: int = OOS_SAMPLE) -> list[str]:
    """``n`` out-of-scope messages of CLINC150's validation split (a fixed random sample): foreign
    messages written by others, of every kind (questions, requests, chit-chat)."""
    rows = [
        json.loads(line)
        for line in (data / "clinc150" / "val.jsonl").read_text().splitlines()
        if line.strip()
    ]
    texts = sorted({r["text"] for r in rows if r["label"] == "oos"})
    return random.Random(0).sample(texts, min(n, len(texts)))


def _pct(num: int, den: int) -> str:
    return f"{num / den:.1%}" if den else "-"


def markdown(out: dict[str, Any]) -> str:
    kinds = out["kinds"]
    names = {
        "first": "first turns",
        "follow": "follow-ups of the same request",
        "switch": "new topic",
        "foreign": "foreign message (fallback expected)",
    }
    lines = [
        "## Conversations: follow-up turns with and without context",
        "",
        f"{out['conversations']} two- and three-turn conversations (`benchmarks/data/conversations.jsonl`, "
        f"CC0) over {out['routes']} routes: the ten intents of the shipped CLINC150 sample "
        "(`tests/fixtures/clinc10`, train split) and the help-desk example's three routes. Bundled model, "
        "default router threshold. *Alone*: the latest message is routed by itself. *Context*: the "
        f"engine's conversation context (`synaptoroute_agents.conversation`: when the latest message "
        f"abstains, the last {out['context_turns']} human turns joined, keeping the previous route when it "
        "still passes there; carry-over on, the default of every face). Tools: one tool per route, `k=3`; "
        "a turn's tools are right when the expected tool is among them.",
        "",
        "| turns | n | route, alone | route, context | tools, alone | tools, context |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        c = kinds.get(kind, {})
        n = c.get("turns", 0)
        t = c.get("tool_turns", 0)
        lines.append(
            f"| {names[kind]} | {n} | {_pct(c.get('route_alone', 0), n)} | {_pct(c.get('route_context', 0), n)} "
            f"| {_pct(c.get('tools_alone', 0), t)} | {_pct(c.get('tools_context', 0), t)} |"
        )
    later = [kinds.get(k, {}) for k in ("follow", "switch", "foreign")]
    n = sum(c.get("turns", 0) for c in later)
    lines.append(
        f"| all later turns | {n} | {_pct(sum(c.get('route_alone', 0) for c in later), n)} | "
        f"{_pct(sum(c.get('route_context', 0) for c in later), n)} | | |"
    )
    sweep = out.get("sweep") or {}
    if sweep:
        lines += [
            "",
            "`context_turns` (how many human turns a follow-up is decided from) trades chains of "
            "follow-ups kept against foreign messages kept on the old route:",
            "",
            "| context_turns | follow-ups right | foreign messages to the fallback | new topics right |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for value, k in sweep.items():
            lines.append(
                f"| {value} | {_pct(k['follow']['route_context'], k['follow']['turns'])} | "
                f"{_pct(k['foreign']['route_context'], k['foreign']['turns'])} | "
                f"{_pct(k['switch']['route_context'], k['switch']['turns'])} |"
            )
    stress_out = out.get("stress") or {}
    if stress_out:
        first = next(iter(stress_out.values()))
        lines += [
            "",
            f"Stress: each of the {out['conversations']} first requests followed directly by each distinct "
            f"foreign message of the set ({first['foreign']} pairs), and each request followed by its own "
            f"follow-up ({first['follow']} pairs), at lower router thresholds, for three follow-up checks "
            "(a carried route needs the check to pass). *None*: carry whenever the joined turns pass. "
            "*Joined*: the joined text must stay closer to the earlier turns than to the latest message "
            "(`conversation.is_follow_up`). *Both* (the default): also, the latest message must not be "
            "self-contained (`conversation.is_self_contained`: closer to generic self-contained messages "
            "than to generic elliptical follow-ups, the shipped `synaptoroute_agents.followups`, and its "
            "nearest self-contained prototype at least as close as the route's nearest utterance).",
            "",
            "| threshold | foreign to the fallback: none | joined | both | follow-ups right: none | joined | both |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, c in stress_out.items():
            fb = " | ".join(_pct(c[f"foreign_fallback_{k}"], c["foreign"]) for k in CHECKS)
            fu = " | ".join(_pct(c[f"follow_right_{k}"], c["follow"]) for k in CHECKS)
            lines.append(f"| {key} | {fb} | {fu} |")
        lines += [
            "",
            "The prototypes were written before any of the set's follow-ups was read. *Both*, per half of "
            "the conversations (even and odd positions in the file; the variants of the check were chosen "
            "between on the even half and on the out-of-scope pairs below):",
            "",
            "| threshold | foreign to the fallback: even | odd | follow-ups right: even | odd |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, c in stress_out.items():
            cells = [
                _pct(c.get(f"foreign_fallback_full_{h}", 0), c.get(f"foreign_{h}", 0))
                for h in ("even", "odd")
            ] + [_pct(c.get(f"follow_right_full_{h}", 0), c.get(f"follow_{h}", 0)) for h in ("even", "odd")]
            lines.append(f"| {key} | {' | '.join(cells)} |")
    oos = out.get("stress_oos") or {}
    if oos:
        lines += [
            "",
            "Foreign messages written by others: each first request followed by each of "
            f"{OOS_SAMPLE} out-of-scope messages of CLINC150's validation split (a fixed random sample, "
            "`--data`):",
            "",
            "| threshold | pairs | to the fallback: none | joined | both |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, c in oos.items():
            oos_cells = " | ".join(_pct(c[f"foreign_fallback_{k}"], c["foreign"]) for k in CHECKS)
            lines.append(f"| {key} | {c['foreign']} | {oos_cells} |")
    lines += ["", "Command: `uv run --group bench python -m benchmarks.conversations --data ../shared/data`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--context-turns", type=int, default=2)
    parser.add_argument("--manifest", default=str(MANIFESTS / "conversations.json"))
    parser.add_argument("--doc", default=str(DEFAULT_DOC))
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/BENCHMARKS.md")
    parser.add_argument("--show-misses", type=int, default=0)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="folder with clinc150/ (optional: out-of-scope stress)",
    )
    args = parser.parse_args(argv)
    out = run(args.context_turns)
    out["sweep"] = {value: run(value)["kinds"] for value in (2, 3)}
    out["stress"] = stress()
    if (args.data / "clinc150" / "val.jsonl").exists():
        out["stress_oos"] = stress(out_of_scope_texts(args.data), thresholds=(0.5,))
    print(markdown(out))
    for miss in out["misses"][: args.show_misses]:
        print("  miss:", miss)
    write_manifest(
        args.manifest,
        "conversations",
        out["kinds"],
        misses=out["misses"],
        stress=out["stress"],
        stress_oos=out.get("stress_oos"),
    )
    if not args.no_doc:
        update_section("conversations", markdown(out), doc=args.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
