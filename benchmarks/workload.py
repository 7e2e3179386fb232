#!/usr/bin/env python3
"""Reproducible synthetic routing workloads (routes, held-out paraphrase queries, expected routes).

A route is an intent made of (action, object, qualifier), e.g.
("cancel", "gym membership", "before Friday"). Each route gets ``k`` utterances
rendered from distinct phrasing templates (and action synonyms); queries are
paraphrase-like variants drawn from *held-out* templates and synonyms, so a
query never equals a stored utterance. A small fraction of queries are
out-of-domain and carry ``expected = null``.

Output JSON::

    {"meta": {...},
     "routes": {name: [utterance, ...]},
     "queries": [str, ...],
     "expected": [route name or null, ...]}

Only the standard library is used, so this runs in any venv.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("make_workload")

# action -> synonyms (the first form is canonical); all are verb phrases taking an object
ACTIONS: dict[str, list[str]] = {
    "cancel": ["cancel", "terminate", "call off", "stop"],
    "renew": ["renew", "extend", "prolong"],
    "upgrade": ["upgrade", "move up", "improve"],
    "pay for": ["pay for", "settle the bill for", "make a payment on"],
    "reschedule": ["reschedule", "move", "change the date of"],
    "track": ["track", "follow", "check where is"],
    "return": ["return", "send back", "give back"],
    "book": ["book", "reserve", "schedule"],
    "get a refund for": ["get a refund for", "get my money back for", "be reimbursed for"],
    "change the address on": ["change the address on", "update the address for", "move the address of"],
    "report a problem with": ["report a problem with", "complain about", "flag an issue with"],
    "compare prices for": ["compare prices for", "find the cheapest", "look up the cost of"],
    "find reviews of": ["find reviews of", "read opinions about", "see ratings for"],
    "set a reminder about": ["set a reminder about", "remind me about", "create an alert for"],
    "share": ["share", "send a copy of", "forward"],
    "download the invoice for": ["download the invoice for", "get the receipt for", "export the bill for"],
    "dispute the charge for": ["dispute the charge for", "contest the fee for", "challenge the payment for"],
    "activate": ["activate", "turn on", "enable"],
    "pause": ["pause", "put on hold", "suspend"],
    "add insurance to": ["add insurance to", "insure", "get coverage for"],
    "split the cost of": ["split the cost of", "share the bill for", "divide the payment for"],
    "rate": ["rate", "leave a review for", "give feedback on"],
    "transfer": ["transfer", "hand over", "move ownership of"],
    "unlock": ["unlock", "get access back to", "regain access to"],
    "repair": ["repair", "fix", "get someone to mend"],
    "sell": ["sell", "get rid of", "find a buyer for"],
    "borrow": ["borrow", "rent", "lend out"],
    "clean": ["clean", "tidy up", "wash"],
    "measure": ["measure", "check the size of", "get the dimensions of"],
    "translate": ["translate", "convert the language of", "get a translation of"],
    "print": ["print", "make a hard copy of", "print out"],
    "back up": ["back up", "save a copy of", "archive"],
    "delete": ["delete", "remove", "erase"],
    "order": ["order", "buy", "purchase"],
    "verify": ["verify", "confirm", "double check"],
    "plan": ["plan", "organise", "prepare"],
    "decorate": ["decorate", "dress up", "style"],
    "water": ["water", "give water to", "hydrate"],
    "charge": ["charge", "top up", "power up"],
    "wrap": ["wrap", "gift wrap", "package"],
}

OBJECTS: list[str] = [
    "gym membership",
    "flight to Denver",
    "train ticket to Lyon",
    "hotel room in Lisbon",
    "car rental",
    "phone contract",
    "internet plan",
    "electricity bill",
    "water bill",
    "streaming subscription",
    "music subscription",
    "newspaper subscription",
    "dentist appointment",
    "doctor's appointment",
    "haircut",
    "yoga class",
    "piano lessons",
    "driving lesson",
    "birthday party",
    "wedding venue",
    "dinner reservation",
    "concert tickets",
    "museum tour",
    "parking permit",
    "library card",
    "passport",
    "driver's license",
    "health insurance",
    "home insurance",
    "pet insurance",
    "savings account",
    "credit card",
    "student loan",
    "mortgage",
    "tax return",
    "pension plan",
    "stock portfolio",
    "crypto wallet",
    "online order",
    "grocery delivery",
    "pizza order",
    "furniture delivery",
    "laptop",
    "washing machine",
    "dishwasher",
    "refrigerator",
    "air conditioner",
    "heating system",
    "bicycle",
    "electric scooter",
    "motorcycle",
    "camping gear",
    "running shoes",
    "winter coat",
    "wedding dress",
    "suit",
    "watch",
    "engagement ring",
    "sunglasses",
    "garden hose",
    "lawn mower",
    "tomato plants",
    "roses",
    "apple tree",
    "aquarium",
    "dog's vet visit",
    "cat's vaccination",
    "horse riding lesson",
    "fishing license",
    "hunting permit",
    "boat rental",
    "ski pass",
    "surfboard",
    "tennis court",
    "golf lessons",
    "chess club membership",
    "book club",
    "language course",
    "coding bootcamp",
    "university application",
    "scholarship",
    "job application",
    "work visa",
    "residence permit",
    "moving truck",
    "storage unit",
    "apartment lease",
    "office space",
    "coworking desk",
    "printer",
    "smartphone",
    "tablet",
    "headphones",
    "smart speaker",
    "television",
    "game console",
    "video game",
    "board game",
    "jigsaw puzzle",
    "photo album",
    "family portrait",
    "holiday cards",
    "gift basket",
    "flower bouquet",
    "birthday cake",
    "catering order",
    "meal kit",
    "coffee machine",
    "espresso beans",
    "wine collection",
    "spreadsheet",
    "presentation slides",
    "project report",
    "research paper",
    "novel manuscript",
    "recipe book",
    "cooking class",
    "baking course",
    "photography workshop",
    "pottery class",
    "kitchen renovation",
    "bathroom tiles",
    "roof repair",
    "window cleaning",
    "chimney sweep",
    "solar panels",
    "electric car",
    "charging station",
    "bus pass",
    "taxi ride",
    "airport shuttle",
    "cruise trip",
    "safari tour",
    "hiking trip",
    "camping reservation",
    "cloud storage",
    "email account",
    "website domain",
    "web hosting",
    "VPN subscription",
    "antivirus license",
    "password manager",
    "smart thermostat",
    "security camera",
    "door lock",
    "car battery",
    "tire change",
    "oil change",
    "car wash",
    "windshield",
]

QUALIFIERS: list[str] = [
    "before Friday",
    "for next week",
    "for tomorrow morning",
    "for this weekend",
    "by the end of the month",
    "in Berlin",
    "in Tokyo",
    "in Chicago",
    "in Madrid",
    "in Toronto",
    "in Sydney",
    "in Cairo",
    "for my daughter",
    "for my son",
    "for my grandmother",
    "for my boss",
    "for my neighbour",
    "for the whole team",
    "for my wife",
    "for my husband",
    "for two people",
    "for a family of five",
    "on my phone",
    "online",
    "over the phone",
    "in person",
    "through the app",
    "with my credit card",
    "with cash",
    "using my points",
    "on a budget",
    "as soon as possible",
    "without extra fees",
    "for the holidays",
    "for my anniversary",
    "for the summer",
    "for the winter",
    "after work",
    "during lunch",
    "at night",
]

UTTERANCE_TEMPLATES: list[str] = [
    "I want to {a} the {o} {q}",
    "can you help me {a} my {o} {q}?",
    "how do I {a} the {o} {q}",
    "please {a} my {o} {q}",
    "I need to {a} the {o} {q}",
    "is it possible to {a} my {o} {q}?",
    "I'd like to {a} a {o} {q}",
    "could you {a} the {o} {q} for me",
    "help me {a} my {o} {q}",
    "what's the way to {a} a {o} {q}?",
]

QUERY_TEMPLATES: list[str] = [
    "hey, I have to {a} my {o} {q}",
    "any idea how to {a} the {o} {q}?",
    "{a} {o} {q}",
    "I was wondering if I could {a} the {o} {q}",
    "need help to {a} a {o} {q}, thanks",
    "where can I {a} my {o} {q}?",
    "quick question: can I {a} the {o} {q}",
    "is there a way to {a} my {o} {q}",
]

OUT_OF_DOMAIN: list[str] = [
    "what is the capital of Peru",
    "tell me a joke about penguins",
    "who won the football match yesterday",
    "how far is the moon from the earth",
    "what does photosynthesis mean",
    "sing me a lullaby",
    "why is the sky blue",
    "what time is it in Nairobi",
    "recommend a good sci-fi novel",
    "how many legs does a spider have",
    "explain quantum entanglement simply",
    "what rhymes with orange",
]


@dataclass(frozen=True)
class Intent:
    action: str
    obj: str
    qualifier: str

    @property
    def route_name(self) -> str:
        def slug(s: str) -> str:
            return "".join(c if c.isalnum() else "_" for c in s.lower()).strip("_")

        return f"{slug(self.action)}__{slug(self.obj)}__{slug(self.qualifier)}"


def _render(template: str, action: str, intent: Intent) -> str:
    return " ".join(template.format(a=action, o=intent.obj, q=intent.qualifier).split())


def sample_intents(n_routes: int, rng: random.Random) -> list[Intent]:
    space = len(ACTIONS) * len(OBJECTS) * len(QUALIFIERS)
    if n_routes > space:
        raise ValueError(f"at most {space} distinct routes, asked for {n_routes}")
    actions = list(ACTIONS)
    flat = rng.sample(range(space), n_routes)
    intents = []
    for i in flat:
        a, rest = divmod(i, len(OBJECTS) * len(QUALIFIERS))
        o, q = divmod(rest, len(QUALIFIERS))
        intents.append(Intent(actions[a], OBJECTS[o], QUALIFIERS[q]))
    return intents


def route_utterances(intent: Intent, k: int, rng: random.Random) -> list[str]:
    templates = rng.sample(UTTERANCE_TEMPLATES, k)
    synonyms = ACTIONS[intent.action][:-1] or ACTIONS[intent.action]  # last synonym held out
    out: list[str] = []
    for j, t in enumerate(templates):
        action = intent.action if j == 0 else rng.choice(synonyms)
        u = _render(t, action, intent)
        if u in out:
            u = _render(t, intent.action, intent)
        out.append(u)
    return out


def make_query(intent: Intent, rng: random.Random) -> str:
    action = rng.choice(ACTIONS[intent.action])
    q = _render(rng.choice(QUERY_TEMPLATES), action, intent)
    return q[0].upper() + q[1:] if rng.random() < 0.3 else q


def build_workload(
    n_routes: int, per_route: int, n_queries: int, ood_fraction: float, seed: int
) -> dict[str, object]:
    if not 1 <= per_route <= len(UTTERANCE_TEMPLATES):
        raise ValueError(f"per_route must be in 1..{len(UTTERANCE_TEMPLATES)}")
    rng = random.Random(seed)
    intents = sample_intents(n_routes, rng)
    routes = {it.route_name: route_utterances(it, per_route, rng) for it in intents}
    if len(routes) != n_routes:
        raise RuntimeError("route name collision")
    queries: list[str] = []
    expected: list[str | None] = []
    n_ood = int(round(n_queries * ood_fraction))
    for _ in range(n_queries - n_ood):
        it = rng.choice(intents)
        queries.append(make_query(it, rng))
        expected.append(it.route_name)
    for i in range(n_ood):
        queries.append(OUT_OF_DOMAIN[i % len(OUT_OF_DOMAIN)] + ("?" if i >= len(OUT_OF_DOMAIN) else ""))
        expected.append(None)
    order = list(range(len(queries)))
    rng.shuffle(order)
    return {
        "meta": {
            "generator": "benchmarks.workload",
            "seed": seed,
            "n_routes": n_routes,
            "utterances_per_route": per_route,
            "n_utterances": sum(len(v) for v in routes.values()),
            "n_queries": len(queries),
            "ood_fraction": ood_fraction,
        },
        "routes": routes,
        "queries": [queries[i] for i in order],
        "expected": [expected[i] for i in order],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--routes", type=int, required=True, help="number of routes")
    p.add_argument("--per-route", type=int, default=5, help="utterances per route")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--ood-fraction", type=float, default=0.05, help="share of queries with expected=null")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    w = build_workload(a.routes, a.per_route, a.queries, a.ood_fraction, a.seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(w))
    log.info("wrote %s: %s", a.out, w["meta"])


if __name__ == "__main__":
    main()
