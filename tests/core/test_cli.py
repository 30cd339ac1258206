import subprocess
import sys

from crmlake.core.cli import main


def test_help_lists_every_job(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "generate" in out and "ingest" in out


def test_unknown_job_is_a_usage_error(capsys):
    assert main(["nonsense"]) == 2
    assert "unknown job 'nonsense'" in capsys.readouterr().err


def test_config_error_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  max_duration: 5\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmlake",
            "ingest",
            "--conf",
            str(bad),
            "--date",
            "2026-01-01",
            "--root",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "ConfigError" in result.stderr and "unknown key 'ingest.max_duration'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_date_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "crmlake", "ingest", "--date", "2026-13-01"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a date" in result.stderr
