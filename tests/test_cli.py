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
    # An import is all or nothing: names that exist stop it before anything is written.
    code, out, err = run(capsys, "import", str(export), "--db", db2)
    assert code == 2 and out == "" and "already exist" in err and "--upsert" in err
    code, out, _ = run(capsys, "import", str(export), "--db", db2, "--replace")  # the former name
    assert "2 updated" in out


def test_errors_are_messages_not_tracebacks(tmp_path, capsys) -> None:
    db = str(tmp_path / "e.db")
    assert run(capsys, "init", "--db", db)[0] == 0
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


def test_version_and_exit_codes_in_help(capsys) -> None:
    from synaptoroute_agents import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"synaptoroute {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit codes:" in out and "usage or input error" in out


def test_json_on_mutations_and_errors(tmp_path, capsys) -> None:
    db = str(tmp_path / "j.db")
    code, out, err = run(
        capsys, "add", "billing", "refund my payment", "I was charged twice", "--json", "--db", db
    )
    assert code == 0 and err == "" and json.loads(out) == {"added": "billing", "utterances": 2}
    code, out, _ = run(capsys, "teach", "billing", "money back please", "--json", "--db", db)
    assert json.loads(out) == {"taught": "billing", "new_utterances": 1}
    code, out, err = run(capsys, "add", "billing", "again", "--json", "--db", db)
    assert code == 2 and out == ""
    assert json.loads(err)["error"] == "duplicate_route" and "billing" in json.loads(err)["detail"]
    code, out, err = run(capsys, "delete", "ghost", "--json", "--db", db)
    assert code == 2 and json.loads(err) == {"error": "route_not_found", "detail": "no route named 'ghost'"}
    code, _, err = run(capsys, "route", "--json", "--db", db)  # a usage error is JSON too
    assert code == 2 and json.loads(err)["error"] == "usage"
    code, _, err = run(capsys, "route", "hello", "--json", "--db", db, "--encoder", "nope")
    assert code == 2 and json.loads(err)["error"] == "invalid_input" and "unknown encoder" in err
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, _, err = run(capsys, "list", "--json", "--db", str(notes))
    assert code == 2 and json.loads(err)["error"] == "not_a_router_store"
    code, out, _ = run(capsys, "delete", "billing", "--json", "--db", db)
    assert code == 0 and json.loads(out) == {"deleted": "billing"}
    # without --json: one line, no traceback
    code, _, err = run(capsys, "delete", "ghost", "--db", db)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")


def test_route_exits_1_when_nothing_matched(tmp_path, capsys) -> None:
    db = str(tmp_path / "r.db")
    run(capsys, "add", "weather", "will it rain tomorrow", "weekend forecast", "--db", db)
    assert run(capsys, "route", "what is the capital of France", "--db", db)[0] == 1
    assert run(capsys, "route", "will it rain on sunday", "what is love", "--db", db)[0] == 0


def test_import_upsert_goes_through_the_batch_path(tmp_path, capsys, monkeypatch) -> None:
    from synaptoroute_agents import Route, SemanticRouter
    from synaptoroute_agents.cli import commands
    from synaptoroute_agents.routefile import write_routes

    db = str(tmp_path / "i.db")
    first = tmp_path / "first.yaml"
    write_routes(first, [Route(f"r{i}", [f"topic {i} alpha", f"topic {i} beta"]) for i in range(5)])
    calls: list[tuple[int, bool]] = []
    add_many = SemanticRouter.add_many

    def spy(self, routes, *, replace=False):  # type: ignore[no-untyped-def]
        routes = list(routes)
        calls.append((len(routes), replace))
        return add_many(self, routes, replace=replace)

    monkeypatch.setattr(SemanticRouter, "add_many", spy)
    monkeypatch.setattr(SemanticRouter, "add", lambda *a, **k: pytest.fail("import must not add one by one"))
    monkeypatch.setattr(commands, "IMPORT_CHUNK", 3)
    code, out, _ = run(capsys, "import", str(first), "--json", "--db", db)
    assert code == 0 and json.loads(out) == {"imported": str(first), "added": 5, "updated": 0}
    assert calls == [(3, False), (2, False)]

    second = tmp_path / "second.yaml"
    write_routes(second, [Route("r1", ["a brand new utterance"]), Route("fresh", ["something else"])])
    code, out, err = run(capsys, "import", str(second), "--json", "--db", db)
    assert code == 2 and out == "" and json.loads(err)["error"] == "duplicate_route"
    assert "'r1'" in json.loads(err)["detail"]
    calls.clear()
    code, out, _ = run(capsys, "import", str(second), "--upsert", "--db", db)
    assert code == 0 and "1 added, 1 updated" in out and calls == [(2, True)]
    with SemanticRouter(store=db) as router:
        assert router.get("r1").utterances == ("a brand new utterance",)
        assert "fresh" in router and len(router) == 6


def test_route_with_the_int8_encoder(tmp_path, capsys) -> None:
    db = str(tmp_path / "q.db")
    argv = ("--db", db, "--encoder", "bundled-int8")
    assert run(capsys, "add", "weather", "will it rain tomorrow", "weekend forecast", *argv)[0] == 0
    code, out, _ = run(capsys, "route", "is it going to rain on sunday", "--json", *argv)
    assert code == 0 and json.loads(out)["name"] == "weather"
    from synaptoroute_agents import EncoderMismatchError, SemanticRouter

    # the stored embeddings are the int8 model's: the default encoder sees another model
    with SemanticRouter(store=db, encoder="bundled-int8", on_encoder_mismatch="error") as router:
        assert router.route("weekend forecast").name == "weather"
    with pytest.raises(EncoderMismatchError):
        SemanticRouter(store=db, on_encoder_mismatch="error")


def test_plots_without_matplotlib_fail_before_fitting(tmp_path, capsys, monkeypatch) -> None:
    from synaptoroute_agents.cli import eval as cli_eval

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello there", "label": "greet"}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.setattr(cli_eval, "run_eval", lambda *a, **k: pytest.fail("fitting started"))
    monkeypatch.setattr(cli_eval, "read_labelled", lambda *a, **k: pytest.fail("data read first"))
    argv = ["eval", "--train", str(data), "--test", str(data), "--plots", str(tmp_path / "plots")]
    code, out, err = run(capsys, *argv)
    assert code == 3 and out == "" and "matplotlib" in err and "synaptoroute-agents[plots]" in err
    code, _, err = run(capsys, *argv, "--json")
    assert code == 3 and json.loads(err)["error"] == "missing_dependency"


def test_eval_reports_its_stages_on_stderr_but_not_with_json(tmp_path, capsys, monkeypatch) -> None:
    from synaptoroute_agents.cli import eval as cli_eval

    class Report:
        def summary(self) -> str:
            return "accuracy 1.0"

    def fake_run_eval(*_a, on_stage=None, **_k):  # type: ignore[no-untyped-def]
        if on_stage is not None:
            on_stage("fitting on 1 examples")
        return {"fit_seconds": 0.0, "embed_seconds": 0.0, "n_train": 1, "n_routes": 1, "report": Report()}

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello there", "label": "greet"}\n')
    monkeypatch.setattr(cli_eval, "run_eval", fake_run_eval)
    code, out, err = run(capsys, "eval", "--train", str(data), "--test", str(data))
    assert code == 0 and "fitting on 1 examples" in err and "accuracy 1.0" in out
    code, out, err = run(capsys, "eval", "--train", str(data), "--test", str(data), "--json")
    assert code == 0 and err == "" and json.loads(out)["n_routes"] == 1


def test_serve_rejects_an_unknown_encoder_before_starting(tmp_path, capsys) -> None:
    # A typo in --encoder is a usage error at once, not a server that answers 503 forever.
    code, out, err = run(capsys, "serve", "--db", str(tmp_path / "s.db"), "--encoder", "bundeld", "--json")
    assert code == 2 and out == ""
    assert json.loads(err)["error"] == "invalid_input" and "bundled-int8" in json.loads(err)["detail"]


# --------------------------------------------------------------------- faults and bad input (issue 21)


def _one_line_error(code: int, out: str, err: str, expected: int = 2) -> None:
    assert code == expected and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["route", "hello there"],
        ["export", "{tmp}/out.yaml"],
        ["teach", "billing", "refund please"],
        ["delete", "billing"],
    ],
)
def test_read_commands_never_create_a_store(tmp_path, capsys, argv: list[str]) -> None:
    # A mistyped --db is an error, never a new empty store at that path.
    db = tmp_path / "mistyped.db"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, *argv, "--db", str(db))
    _one_line_error(code, out, err)
    assert "no store at" in err and str(db) in err and "synaptoroute init" in err
    assert not db.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    code, out, err = run(capsys, *argv, "--db", str(db), "--json")
    assert code == 2 and json.loads(err)["error"] == "store_not_found" and not db.exists()


def test_commands_that_write_create_the_store(tmp_path, capsys) -> None:
    for argv in (["init"], ["add", "billing", "refund my payment"]):
        db = tmp_path / f"{argv[0]}.db"
        assert run(capsys, *argv, "--db", str(db))[0] == 0 and db.exists()
    routes = tmp_path / "routes.yaml"
    routes.write_text("routes:\n  - name: weather\n    utterances: [will it rain]\n")
    assert run(capsys, "import", str(routes), "--db", str(tmp_path / "import.db"))[0] == 0
    assert (tmp_path / "import.db").exists()


def test_read_commands_refuse_an_empty_file_and_a_folder(tmp_path, capsys) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, out, err = run(capsys, "list", "--db", str(empty))
    _one_line_error(code, out, err)
    assert empty.stat().st_size == 0  # no tables were written into it
    code, out, err = run(capsys, "list", "--db", str(tmp_path))
    _one_line_error(code, out, err)


def test_export_from_a_mistyped_db_keeps_the_route_file(tmp_path, capsys) -> None:
    db = str(tmp_path / "real.db")
    run(capsys, "add", "billing", "refund my payment", "--db", db)
    target = tmp_path / "routes.yaml"
    assert run(capsys, "export", str(target), "--db", db)[0] == 0
    before = target.read_bytes()
    assert b"billing" in before
    code, out, err = run(capsys, "export", str(target), "--db", str(tmp_path / "reall.db"))
    _one_line_error(code, out, err)
    assert target.read_bytes() == before and not (tmp_path / "reall.db").exists()


def test_export_refuses_to_replace_routes_with_nothing_unless_forced(tmp_path, capsys) -> None:
    empty_db = str(tmp_path / "empty.db")
    assert run(capsys, "init", "--db", empty_db)[0] == 0
    target = tmp_path / "routes.json"
    target.write_text('{"routes": [{"name": "billing", "utterances": ["refund"]}]}\n')
    before = target.read_bytes()
    code, out, err = run(capsys, "export", str(target), "--db", empty_db)
    _one_line_error(code, out, err)
    assert "--force" in err and "0 routes" in err and target.read_bytes() == before
    code, out, err = run(capsys, "export", str(target), "--db", empty_db, "--json")
    assert code == 2 and json.loads(err)["error"] == "export_refused" and target.read_bytes() == before
    code, out, _ = run(capsys, "export", str(target), "--db", empty_db, "--force")
    assert code == 0 and "exported 0 routes" in out
    assert json.loads(target.read_text())["routes"] == []
    # an empty export into a new (or an empty) file needs no --force
    fresh = tmp_path / "fresh.yaml"
    assert run(capsys, "export", str(fresh), "--db", empty_db)[0] == 0 and fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db", "fresh.yaml", "routes.json"]


def test_export_writes_a_temporary_file_and_renames_it(tmp_path, capsys, monkeypatch) -> None:
    # A failure half-way through writing leaves the old file whole and no temporary file behind.
    import os

    db = str(tmp_path / "x.db")
    run(capsys, "add", "billing", "refund my payment", "--db", db)
    target = tmp_path / "routes.yaml"
    target.write_text("routes: []\n")
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src, dst):  # type: ignore[no-untyped-def]
        renames.append((str(src), str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    assert run(capsys, "export", str(target), "--db", db)[0] == 0
    assert len(renames) == 1 and renames[0][1] == str(target)
    assert os.path.dirname(renames[0][0]) == str(tmp_path) and renames[0][0] != str(target)
    assert "billing" in target.read_text()

    def broken_replace(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    before = target.read_bytes()
    code, out, err = run(capsys, "export", str(target), "--db", db)
    _one_line_error(code, out, err)
    assert "No space left" in err and target.read_bytes() == before
    left = {p.name for p in tmp_path.iterdir()} - {"x.db", "x.db-wal", "x.db-shm"}
    assert left == {"routes.yaml"}  # the temporary file was removed


def test_export_into_a_missing_folder_is_one_line(tmp_path, capsys) -> None:
    db = str(tmp_path / "x.db")
    run(capsys, "add", "billing", "refund my payment", "--db", db)
    target = tmp_path / "no" / "such" / "routes.yaml"
    code, out, err = run(capsys, "export", str(target), "--db", db)
    _one_line_error(code, out, err)
    assert f"folder {tmp_path / 'no' / 'such'} does not exist" in err and ".tmp" not in err


@pytest.mark.parametrize(
    ("flag", "value", "wording"),
    [
        ("--port", "99999", "--port must be"),
        ("--port", "-1", "--port must be"),
        ("--poll-interval", "-1", "--poll-interval must be"),
        ("--poll-interval", "nan", "--poll-interval must be"),
        ("--max-inflight", "0", "--max-inflight must be"),
        ("--max-body-bytes", "-5", "--max-body-bytes must be"),
    ],
)
def test_bad_serve_options_are_one_line_usage_errors(
    tmp_path, capsys, monkeypatch, flag, value, wording
) -> None:
    import synaptoroute_agents.server as server

    monkeypatch.setattr(server, "serve", lambda **_k: pytest.fail("the server started"))
    db = tmp_path / "s.db"
    code, out, err = run(capsys, "serve", "--db", str(db), f"{flag}={value}")
    _one_line_error(code, out, err)
    assert wording in err and not db.exists()
    code, out, err = run(capsys, "serve", "--db", str(db), f"{flag}={value}", "--json")
    assert code == 2 and json.loads(err)["error"] == "usage"


def test_route_top_k_is_bounded(tmp_path, capsys) -> None:
    from synaptoroute_agents.router import MAX_TOP_K

    db = str(tmp_path / "k.db")
    run(capsys, "add", "billing", "refund my payment", "--db", db)
    run(capsys, "add", "weather", "will it rain tomorrow", "--db", db)
    for bad in ("0", "-3", str(MAX_TOP_K + 1), "1000000000"):
        code, out, err = run(capsys, "route", "refund", "--top-k", bad, "--db", db)
        _one_line_error(code, out, err)
        assert "--top-k must be" in err and str(MAX_TOP_K) in err
    code, out, _ = run(capsys, "route", "refund my payment", "--top-k", str(MAX_TOP_K), "--json", "--db", db)
    assert code == 0 and len(json.loads(out)["candidates"]) == 2
