import json
import logging
import subprocess
import sys
from pathlib import Path

from hypomimia import __version__
from hypomimia.logs import JsonFormatter, redact_path

CLI = [sys.executable, "-m", "hypomimia"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"hypomimia {__version__}"


def test_config_validate_reports_each_problem_without_traceback(tmp_path: Path):
    bad = tmp_path / "params.yaml"
    bad.write_text("phantom:\n  subjects: many\n  size: 100\ntrain:\n  epochz: 3\n")
    r = run_cli("config", "validate", str(bad))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    for fragment in ("phantom.subjects: got 'many'", "phantom.size: got 100", "train.epochz: unknown key"):
        assert fragment in r.stderr


def test_config_show_prints_resolved_defaults(tmp_path: Path):
    f = tmp_path / "p.yaml"
    f.write_text("train:\n  epochs: 2\n")
    r = run_cli("config", "show", "--params", str(f))
    assert r.returncode == 0, r.stderr
    assert "epochs: 2" in r.stdout and "phantom:" in r.stdout and "subjects: 32" in r.stdout


def test_unknown_command_fails():
    assert run_cli("no-such-command").returncode != 0


def test_json_log_lines_are_machine_readable():
    rec = logging.LogRecord("hypomimia.x", logging.INFO, __file__, 1, "tube %s done", ("ph_s001_v00",), None)
    line = json.loads(JsonFormatter().format(rec))
    assert line["msg"] == "tube ph_s001_v00 done" and line["level"] == "info"


def test_redact_path_hides_identifying_names():
    token = redact_path("/hospital/videos/Jane_Doe_visit1.mp4")
    assert "Jane" not in token and token == redact_path("/hospital/videos/Jane_Doe_visit1.mp4")
