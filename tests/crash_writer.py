"""Streams mutations into a store and prints each one after it is acknowledged (for crash tests).

Usage: python crash_writer.py STORE RUN_ID SEED

Lines: ``BEGIN <json op>`` before a call, ``ACK <json op>`` after it returned. The parent kills
this process with SIGKILL at a random moment and checks that every ACKed mutation survived.
"""

from __future__ import annotations

import json
import random
import sys

from synaptoroute_agents import Route, SemanticRouter
from synaptoroute_agents.testing import HashEncoder


def main() -> None:
    store, run_id, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    router = SemanticRouter(encoder=HashEncoder(), store=store)
    names = [f"run{run_id}_r{j}" for j in range(4)]
    live: dict[str, list[str]] = {}
    k = 0
    print("READY", flush=True)
    while True:
        name = rng.choice(names)
        k += 1
        if name not in live:
            op = {"op": "add", "name": name, "texts": [f"{name} first {k}", f"{name} second {k}"]}
        else:
            roll = rng.random()
            if roll < 0.2:
                op = {"op": "delete", "name": name}
            elif roll < 0.4:
                op = {"op": "update", "name": name, "texts": [f"{name} updated {k}"]}
            elif roll < 0.8 or len(live[name]) < 2:
                op = {"op": "add_utterances", "name": name, "texts": [f"{name} more {k}"]}
            else:
                op = {"op": "remove_utterances", "name": name, "texts": [live[name][0]]}
        print("BEGIN", json.dumps(op), flush=True)
        if op["op"] == "add":
            router.add(Route(name, op["texts"]))
            live[name] = list(op["texts"])
        elif op["op"] == "delete":
            router.delete(name)
            del live[name]
        elif op["op"] == "update":
            router.update(Route(name, op["texts"]))
            live[name] = list(op["texts"])
        elif op["op"] == "add_utterances":
            router.add_utterances(name, op["texts"])
            live[name] += op["texts"]
        else:
            router.remove_utterances(name, op["texts"])
            live[name] = [t for t in live[name] if t not in op["texts"]]
        print("ACK", json.dumps(op), flush=True)


if __name__ == "__main__":
    main()
