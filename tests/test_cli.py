"""The `synaptoroute` command, run in-process against a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from synaptoroute_agents.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_prints_routes_and_abstentions() -> None:
    # As a user runs it: a separate process through the console script's module.
    proc = subprocess.run(
        [sys.executable, "-m", "synaptoroute_agents.cli", "demo"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("network_diagnostics" in line and "matched" in line for line in lines)
    assert any("below_threshold" in line for line in lines)
    assert "abstained" in lines[-1]


def test_lifecycle_through_the_cli(tmp_path, capsys) -> None:
    db = str(tmp_path / "cli.db")
    assert run(capsys, "init", "--db", db)[0] == 0
    code, out, _ = run(capsys, "add", "weather", "will it rain tomorrow", "weekend forecast", "--db", db)
    assert code == 0 and "2 utterances" in out
    run(capsys, "add", "billing", "refund my payment", "--db", db, "--threshold", "0.4")
    code, out, _ = run(capsys, "teach", "billing", "I was charged twice", "refund my payment", "--db", db)
    assert "1 new" in out
    code, out, _ = run(capsys, "route", "is it going to rain on sunday", "--json", "--db", db)
    data = json.loads(out)
    assert data["name"] == "weather" and data["reason"] == "matched" and data["candidates"]
    code, out, _ = run(capsys, "route", "charged two times for one order", "what is love", "--db", db)
    assert "billing" in out and "below_threshold" in out
    code, out, _ = run(capsys, "list", "--json", "--db", db)
    assert [r["name"] for r in json.loads(out)] == ["billing", "weather"]

    export = tmp_path / "routes.yaml"
    assert run(capsys, "export", str(export), "--db", db)[0] == 0
    data = yaml.safe_load(export.read_text())
    assert {r["name"] for r in data["routes"]} == {"billing", "weather"}

    assert run(capsys, "delete", "weather", "--db", db)[0] == 0
    code, out, _ = run(capsys, "list", "--db", db)
    assert "weather" not in out

    db2 = str(tmp_path / "other.db")
    code, out, _ = run(capsys, "import", str(export), "--db", db2)
    assert code == 0 and "2 added" in out
    code, out, err = run(capsys, "import", str(export), "--db", db2)
    assert "0 added" in out and "skipped" in err
    code, out, _ = run(capsys, "import", str(export), "--db", db2, "--replace")
    assert "2 updated" in out


def test_errors_are_messages_not_tracebacks(tmp_path, capsys) -> None:
    db = str(tmp_path / "e.db")
    code, _, err = run(capsys, "delete", "ghost", "--db", db)
    assert code == 2 and "no route named 'ghost'" in err
    code, _, err = run(capsys, "route", "   ", "--db", db)
    assert code == 2 and "empty" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "import", str(bad), "--db", db)
    assert code == 2 and "not valid JSON" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, _, err = run(capsys, "list", "--db", str(notes))
    assert code == 2 and "not a router store" in err
