"""The Elasticsearch service script starts for whoever runs it, from any folder.

- an ordinary user, from a private (mode-700) home: the server runs as that user;
- root, from a mode-700 folder the service user cannot enter: the server runs as the service user
  from a place it can reach, and the script says so in one line.
A start leaves nothing in /tmp (Elasticsearch's launcher writes a folder there unless told otherwise).

Each case copies scripts/services into the private folder and starts a second, small server on its
own port (from the distribution zip the suite's server was installed from), checks its health and who
runs it, then stops and removes it. Run as a non-root user, the first case runs as that user and the
root case is skipped.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = Path(os.environ.get("SERVICES_DIR") or REPO / ".services")
IS_ROOT = os.geteuid() == 0
pytestmark = pytest.mark.integration


def _es_version() -> str:
    text = (REPO / "scripts/services/elasticsearch.sh").read_text()
    return text.split('ES_VERSION="${ES_VERSION:-', 1)[1].split("}", 1)[0]


def _zip() -> Path | None:
    path = SERVICES_DIR / "download" / f"elasticsearch-{_es_version()}.zip"
    return path if path.is_file() else None


def _copy_scripts(root: Path) -> Path:
    clone = root / "clone"
    shutil.copytree(REPO / "scripts" / "services", clone / "scripts" / "services")
    return clone


def _run(cmd, env, timeout=300):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _health(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_cluster/health", timeout=10) as resp:
        return resp.read().decode()


def _server_users(es_home: str) -> set[str]:
    """Users of the processes whose command line names this server's home (the JVMs)."""
    ps = subprocess.run(["ps", "-ewwo", "user:32,args"], capture_output=True, text=True).stdout.splitlines()
    rows = [line.split(None, 2) for line in ps[1:]]
    return {r[0] for r in rows if len(r) == 3 and r[1].endswith("/java") and es_home in r[2]}


def _launcher_temp_folders(user: str) -> set[Path]:
    """The folders Elasticsearch's launcher makes at each start (final-flags*) that `user` owns in /tmp,
    Java's default temp folder whatever TMPDIR says."""
    return {p for p in Path("/tmp").glob("final-flags*") if p.owner() == user}


def _base_env(services: Path, port: int, home: str) -> dict:
    env = {"PATH": os.environ["PATH"], "HOME": home, "SERVICES_DIR": str(services), "ES_PORT": str(port),
           "ES_HEAP": "256m", "ES_START_TIMEOUT": "240", "LANG": "C.UTF-8"}
    if _zip():
        env["ES_ZIP"] = str(_zip())
    return env


@pytest.fixture()
def ordinary_user():
    """(name, private home): a fresh account when the suite runs as root, else the current user."""
    if not IS_ROOT:
        home = Path(tempfile.mkdtemp(dir=os.environ.get("HOME")))  # mode 700, inside the user's home
        yield pwd.getpwuid(os.geteuid()).pw_name, home
        shutil.rmtree(home, ignore_errors=True)
        return
    name = f"dd{uuid.uuid4().hex[:8]}"
    home = Path("/home") / name
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash", name], check=True)
    home.chmod(0o700)
    yield name, home
    subprocess.run(["pkill", "-u", name], capture_output=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


def test_elasticsearch_starts_as_an_ordinary_user_from_a_private_home(ordinary_user):
    name, home = ordinary_user
    clone = home / "work"
    clone.mkdir()
    clone = _copy_scripts(clone)
    services = clone / ".services"
    env = _base_env(services, 9291, str(home))
    if IS_ROOT and _zip():  # the zip of the suite's server lies in root's folder: hand the user a copy
        shutil.copy(_zip(), home / _zip().name)
        env["ES_ZIP"] = str(home / _zip().name)
    if IS_ROOT:
        subprocess.run(["chown", "-R", f"{name}:", str(home)], check=True)
    as_user = ["runuser", "-u", name, "--"] if IS_ROOT else []
    script = str(clone / "scripts/services/elasticsearch.sh")
    temp_before = _launcher_temp_folders(name)
    start = _run([*as_user, "env", *[f"{k}={v}" for k, v in env.items()], "bash", script, "start"], env=env)
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        assert '"status":"green"' in _health(9291) or '"status":"yellow"' in _health(9291)
        assert _launcher_temp_folders(name) == temp_before, "a start must leave nothing in /tmp"
        es_home = _run([*as_user, "env", *[f"{k}={v}" for k, v in env.items()], "bash", script, "home"], env=env).stdout.strip()
        assert es_home.startswith(str(services))  # in the user's own folder, not relocated
        assert _server_users(es_home) == {name}, "the server must run as the user who started it"
        assert "useradd" not in start.stderr and "Permission denied" not in start.stderr
    finally:
        stop = _run([*as_user, "env", *[f"{k}={v}" for k, v in env.items()], "bash", script, "stop"], env=env)
    assert stop.returncode == 0, stop.stderr
    assert not _server_users(es_home)


@pytest.mark.skipif(not IS_ROOT, reason="needs root (the suite runs as an ordinary user)")
def test_elasticsearch_starts_as_root_from_a_mode_700_folder():
    private = Path(tempfile.mkdtemp())  # mode 700: the service user cannot enter it
    assert private.stat().st_mode & 0o777 == 0o700
    clone = _copy_scripts(private)
    env = _base_env(clone / ".services", 9292, os.environ.get("HOME", "/root"))
    script = str(clone / "scripts/services/elasticsearch.sh")
    start = _run(["bash", script, "start"], env=env)
    es_home = _run(["bash", script, "home"], env=env).stdout.strip()
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        assert "cannot enter" in start.stderr and "/var/lib/near-dup-es/" in start.stderr  # said in one line
        assert es_home.startswith("/var/lib/near-dup-es/")
        assert '"status":"' in _health(9292)
        assert _server_users(es_home) == {"esdedup"}
    finally:
        _run(["bash", script, "remove"], env=env)
        shutil.rmtree(private, ignore_errors=True)
    assert not _server_users(es_home) and not Path(es_home).exists()
