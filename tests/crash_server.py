"""Starts ``synaptoroute serve`` processes on one store, for the SIGKILL tests.

Usage: python crash_server.py STORE API_KEY LOG

The same command a user runs (the CLI's ``serve``: the app, uvicorn, the store), with the
:class:`~synaptoroute_agents.testing.HashEncoder` registered as ``hash``: what the tests check
(acknowledged writes survive a kill) is the store's and the server's, not the encoder's.

The tests kill and restart a server ten times per store; importing FastAPI, uvicorn and the
engine takes seconds on a loaded machine. So this process imports them once, then reads a port
per line on stdin and forks a server for it (before any thread or connection exists), printing
the child's pid. Each child is a whole server process of its own: the test SIGKILLs it by pid.
"""

from __future__ import annotations

import os
import signal
import sys

import synaptoroute_agents.server  # noqa: F401  (imported once, before the forks)
from synaptoroute_agents.cli import main
from synaptoroute_agents.encoders.registry import register_encoder
from synaptoroute_agents.testing import HashEncoder


def serve(store: str, key: str, port: str, log: str) -> None:
    """The child: ``synaptoroute serve`` on ``port`` with its output in ``log``."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    argv = ["serve", "--db", store, "--port", port, "--encoder", "hash", "--api-key", key]
    code = main([*argv, "--log-level", "warning", "--poll-interval", "0"])
    os._exit(code)


if __name__ == "__main__":
    store, key, log = sys.argv[1], sys.argv[2], sys.argv[3]
    register_encoder("hash", lambda _arg: HashEncoder())
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the system
    for line in sys.stdin:
        port = line.strip()
        pid = os.fork()
        if pid == 0:
            sys.stdin.close()
            serve(store, key, port, log)
        print(pid, flush=True)
