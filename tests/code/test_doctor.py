from pathlib import Path

from hypomimia.doctor import run_checks


def test_doctor_finds_mediapipe_models_loadable(tmp_path: Path):
    checks = {c.name: c for c in run_checks(tmp_path / "work")}
    mp = checks["mediapipe face models"]
    assert mp.ok, mp.detail
    assert "478 landmarks" in mp.detail
    assert checks["python"].ok


def test_doctor_flags_unwritable_dir(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder is needed
    checks = {c.name: c for c in run_checks(blocker / "work")}
    bad = [c for name, c in checks.items() if name.startswith("writable") and not c.ok]
    assert bad and "choose another --workdir" in bad[0].detail


def test_doctor_command_exits_1_when_something_needed_is_missing(monkeypatch):
    from typer.testing import CliRunner

    import hypomimia.commands.doctor as cmd
    from hypomimia.cli import _app
    from hypomimia.doctor import Check

    monkeypatch.setattr(cmd, "run_checks", lambda workdir: [Check("package kfp", False, "not installed")])
    r = CliRunner().invoke(_app, ["doctor"])
    assert r.exit_code == 1
    assert "needed but missing: package kfp" in r.output
