"""Safe by default (issue 31): run.sh listens on 127.0.0.1; another address needs sign-in configured or --no-auth.

The refusal is checked through ``bash run.sh`` itself, copied with the launcher into a temporary folder
(no secrets there, ``HOME`` pointing there too), so the developer's own ``.streamlit/secrets.toml`` cannot
change the outcome and a refused start is seen to stop before the set-up runs. The binding is checked on
a real Streamlit server started the way run.sh starts it, and the way ``streamlit run app.py`` does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from anodet.access import serving

ROOT = Path(__file__).resolve().parent.parent
AUTH = """[auth]
redirect_uri = "https://anodet.example.com/oauth2callback"
cookie_secret = "0123456789abcdef0123456789abcdef"
client_id = "anodet"
client_secret = "s3cret"
server_metadata_url = "https://idp.example.com/.well-known/openid-configuration"
"""


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No operator settings from this machine: a HOME without ~/.streamlit, no anodet or Streamlit address vars."""
    for var in ("ANODET_HOST", "ANODET_POLICY", "STREAMLIT_SERVER_ADDRESS", "STREAMLIT_SECRETS_FILES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def copy(clean_env) -> Path:
    """run.sh and the launcher in a folder of their own (no .venv, no secrets, no scripts/setup.sh)."""
    folder = clean_env / "clone"
    (folder / "anodet").mkdir(parents=True)
    shutil.copy(ROOT / "run.sh", folder / "run.sh")
    shutil.copy(ROOT / "anodet" / "__init__.py", folder / "anodet" / "__init__.py")
    shutil.copytree(ROOT / "anodet" / "access", folder / "anodet" / "access",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".streamlit").mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", folder / ".streamlit" / "config.toml")
    return folder


def run_sh(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "run.sh", *args], cwd=folder, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": sys.executable, **(env or {})})


@pytest.mark.parametrize(("args", "env"), [
    ((), {"ANODET_HOST": "0.0.0.0"}),
    (("--host", "0.0.0.0"), {}),
    (("--server.address=0.0.0.0",), {}),
    ((), {"STREAMLIT_SERVER_ADDRESS": "::"}),
])
def test_every_interface_without_sign_in_is_refused(copy, args, env):
    done = run_sh(copy, *args, env=env)
    assert done.returncode == 2, done
    message = done.stderr.strip()
    assert message.startswith("anodet: refusing to listen on ") and "without sign-in" in message
    assert "--no-auth" in message and message.count("\n") == 0 and message.endswith(".")
    assert not (copy / ".venv").exists()  # refused before the set-up: nothing installed, nothing written


def test_a_secrets_file_without_a_provider_is_still_refused(copy):
    (copy / ".streamlit" / "secrets.toml").write_text('[auth]\nredirect_uri = "x"\ncookie_secret = "y"\n')
    done = run_sh(copy, env={"ANODET_HOST": "0.0.0.0"})
    assert done.returncode == 2 and "names no provider" in done.stderr, done


def test_decisions(clean_env, monkeypatch):
    monkeypatch.chdir(clean_env)
    assert serving.decide("127.0.0.1", False, []) == (True, None)
    assert serving.decide("localhost", False, []) == (True, None)
    ok, message = serving.decide("0.0.0.0", False, [])
    assert not ok and message is not None and "there is no [auth] section" in message
    ok, message = serving.decide("0.0.0.0", True, [])
    assert ok and message is not None and "WITHOUT sign-in" in message
    secrets = clean_env / "secrets.toml"
    secrets.write_text(AUTH)
    assert serving.decide("0.0.0.0", False, ["--secrets.files", str(secrets)]) == (True, None)
    secrets.write_text(AUTH.replace("cookie_secret", "cookie"))
    ok, message = serving.decide("0.0.0.0", False, ["--secrets.files", str(secrets)])
    assert not ok and message is not None and "has no cookie_secret" in message
    secrets.write_text(AUTH)
    policy = clean_env / "policy.toml"
    policy.write_text('default_role = "boss"\n')
    monkeypatch.setenv("ANODET_POLICY", str(policy))
    ok, message = serving.decide("0.0.0.0", False, ["--secrets.files", str(secrets)])
    assert not ok and message is not None and "role 'boss'" in message
    assert [serving.is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "0.0.0.0", "::", "10.1.2.3",
                                               "example.com")] == [True, True, True, True, False, False, False, False]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(command: list[str]) -> set[str]:
    """Start a Streamlit server, wait until it answers on 127.0.0.1, return the addresses it listens on; stop it."""
    port = _free_port()
    proc = subprocess.Popen([*command, "--server.port", str(port), "--server.headless", "true"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer in time"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        return {c.laddr.ip for c in psutil.Process(proc.pid).net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_run_sh_listens_on_loopback_only(clean_env):
    """What run.sh execs after the set-up (the launcher, no address given) listens on 127.0.0.1 alone."""
    assert _listening([sys.executable, "-m", "anodet.access.serving"]) == {"127.0.0.1"}


def test_plain_streamlit_run_listens_on_loopback_only(clean_env):
    """`streamlit run app.py` without run.sh: .streamlit/config.toml keeps it on 127.0.0.1 too."""
    assert _listening([sys.executable, "-m", "streamlit", "run", "app.py"]) == {"127.0.0.1"}
