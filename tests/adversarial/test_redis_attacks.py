"""Issue 24, rows 3-6: a Redis consumer under hostile or broken conditions keeps going.

Each test runs ``python -m anodet stream --source redis://…`` (a subprocess, as a user runs it)
against its own redis-server on 127.0.0.1 (Debian's binary).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.adversarial.conftest import ROOT
from tests.conftest import wait_for

redis = pytest.importorskip("redis")
from redis_server import REDIS_SERVER, RedisServer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not os.path.exists(REDIS_SERVER),
                                                   reason="redis-server is not installed")]
EVERYTHING = "--threshold=-1e300"
"""Every record raises an alert: the alert log is the decision log."""


def cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "anodet", "stream", "--detector", "pca", "--status-every", "0.5",
                             *args], cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def stop(proc: subprocess.Popen) -> str:
    assert proc.poll() is None, "the consumer stopped: " + proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err, err
    return err


def add_lines(client, lines: list[bytes], name: str = "flows", **extra) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for i, line in enumerate(lines):
        pipe.xadd(name, {"line": line, "conn_id": f"c{i}", **extra})
    return [i.decode() for i in pipe.execute()]


def drained(client, total: int, name: str = "flows", group: str = "g") -> bool:
    if not client.exists(name):
        return False
    found = [g for g in client.xinfo_groups(name) if g["name"].decode() == group]
    return bool(found) and (found[0]["entries-read"] or 0) >= total and found[0]["lag"] == 0 \
        and found[0]["pending"] == 0


def entries_of(log: Path) -> list[str]:
    return [json.loads(x)["entry"] for x in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def server(tmp_path):
    srv = RedisServer(tmp_path)
    yield srv
    srv.stop()


def test_an_alert_redis_refuses_goes_to_the_dead_letter_stream_and_the_consumer_goes_on(server, tmp_path,
                                                                                        raw_test_lines):
    ids = add_lines(server.client, raw_test_lines[:100])
    poison = server.client.xadd("flows", {"line": raw_test_lines[100], "note": "x" * (1536 << 10)}).decode()
    ids += [poison, *add_lines(server.client, raw_test_lines[101:200])]
    server.client.config_set("proto-max-bulk-len", "1mb")  # from now on the server refuses a value this big
    log = tmp_path / "alerts.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log), "--alerts",
               server.url("alerts"), EVERYTHING)
    try:
        assert wait_for(lambda: drained(server.client, 200) or proc.poll() is not None, 120)
        err = stop(proc)
    finally:
        proc.kill()
    assert sorted(entries_of(log)) == sorted(ids)  # every decision written once
    streamed = [json.loads(f[b"alert"])["entry"] for _, f in server.client.xrange("alerts")]
    assert sorted(streamed) == sorted(i for i in ids if i != poison)  # good alerts once: no duplicates
    dead = server.client.xrange("flows:dead")
    assert len(dead) == 1 and dead[0][1][b"entry"].decode() == poison
    assert b"refused its alert" in dead[0][1][b"reason"] and dead[0][1][b"group"] == b"g"
    assert "1 dead letters" in err


def test_redis_restarting_during_alert_flushes_is_retried(tmp_path, raw_test_lines):
    source = RedisServer(tmp_path)
    (tmp_path / "b").mkdir()
    alerts = RedisServer(tmp_path / "b")
    log = tmp_path / "alerts.jsonl"
    proc = cli("--source", source.url("flows"), "--group", "g", "--alerts", str(log), "--alerts",
               alerts.url("alerts"), EVERYTHING)
    try:
        first = add_lines(source.client, raw_test_lines[:300])
        assert wait_for(lambda: drained(source.client, 300), 120)
        alerts.stop()  # the alert server restarts (without persistence) while records keep coming
        second = add_lines(source.client, raw_test_lines[300:600])
        assert wait_for(lambda: len(entries_of(log)) > 300, 60)  # decided and logged; its alert flush retrying
        time.sleep(1.0)
        alerts.restart()
        assert wait_for(lambda: drained(source.client, 600), 120)
        err = stop(proc)
        streamed = [json.loads(f[b"alert"])["entry"] for _, f in alerts.client.xrange("alerts")]
    finally:
        proc.kill()
        source.stop()
        alerts.stop()
    assert sorted(entries_of(log)) == sorted(first + second)  # nothing decided twice, nothing lost
    assert sorted(streamed) == sorted(second)  # every alert since the restart, once
    assert "retrying in" in err and "Traceback" not in err


def test_an_entry_that_keeps_coming_back_is_set_aside(server, tmp_path, raw_test_lines):
    client = server.client
    poison = add_lines(client, raw_test_lines[:10])
    client.xgroup_create("flows", "g", id="0")
    for start in (">", "0", "0", "0"):  # a consumer that dies on these entries, four times over
        client.xreadgroup("g", "dying", {"flows": start}, count=100)
    log = tmp_path / "alerts.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log), EVERYTHING,
               "--claim-idle", "0.2", "--max-deliveries", "4")
    try:
        time.sleep(0.5)
        good = add_lines(client, raw_test_lines[10:60])
        assert wait_for(lambda: drained(client, 60), 120)
        err = stop(proc)
    finally:
        proc.kill()
    assert sorted(entries_of(log)) == sorted(good)  # the poison entries were not scored again
    dead = {f[b"entry"].decode(): f for _, f in client.xrange("flows:dead")}
    assert sorted(dead) == sorted(poison)
    assert all(b"delivered 5 times" in f[b"reason"] and f[b"deliveries"] == b"5" for f in dead.values())
    assert json.loads(next(iter(dead.values()))[b"fields"])["conn_id"].startswith("c")
    assert "10 dead letters" in err


def test_huge_passthrough_fields_are_capped_like_a_line(server, tmp_path, raw_test_lines):
    blob = b"y" * (10 << 20)
    huge = add_lines(server.client, raw_test_lines[:12], blob=blob)
    normal = add_lines(server.client, raw_test_lines[12:40])
    log, rejects = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log), "--rejects", str(rejects),
               EVERYTHING)
    try:
        assert wait_for(lambda: drained(server.client, 40), 120)
        peak_kb = int(next(x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                           if x.startswith("VmHWM")).split()[1])
        stop(proc)
    finally:
        proc.kill()
    assert sorted(entries_of(log)) == sorted(normal) and log.stat().st_size < 100_000
    refused = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert sorted(r["entry"] for r in refused) == sorted(huge)
    assert all("longer than 4 MiB" in r["reason"] and len(r["raw"]) <= 200 for r in refused)
    assert peak_kb < 1_200_000, f"the consumer peaked at {peak_kb / 1024:.0f} MiB"


def test_a_field_that_is_not_utf8_fails_closed(server, tmp_path, raw_test_lines):
    entry = server.client.xadd("flows", {"line": raw_test_lines[0], "note": b"caf\xe9"}).decode()
    log = tmp_path / "alerts.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log))  # the default threshold
    try:
        assert wait_for(lambda: drained(server.client, 1), 120)
        stop(proc)
    finally:
        proc.kill()
    alert = json.loads(log.read_text())
    assert alert["entry"] == entry and alert["saturated"] is True and "not UTF-8" in alert["reason"]
    assert alert["fields"]["note"] == "caf\\xe9"


def test_a_password_in_the_url_or_the_environment_is_used_and_never_shown(tmp_path, raw_test_lines):
    secret = "s3cr3t-Pw"
    server = RedisServer(tmp_path, "--requirepass", secret, client_options={"password": secret})
    try:
        ids = add_lines(server.client, raw_test_lines[:50])
        log, stats = tmp_path / "alerts.jsonl", tmp_path / "stats.json"
        url = f"redis://:{secret}@127.0.0.1:{server.port}/flows"
        proc = cli("--source", url, "--group", "g", "--alerts", str(log), "--stats", str(stats), EVERYTHING)
        try:
            assert wait_for(lambda: drained(server.client, 50), 120)
            err = stop(proc)
        finally:
            proc.kill()
        assert sorted(entries_of(log)) == sorted(ids)
        assert secret not in err and secret not in stats.read_text() and ":***@" in err
        more = add_lines(server.client, raw_test_lines[50:60])
        proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log), EVERYTHING,
                   env={"ANODET_REDIS_PASSWORD": secret})
        try:
            assert wait_for(lambda: drained(server.client, 60), 120)
            stop(proc)
        finally:
            proc.kill()
        assert set(more) <= set(entries_of(log))
        wrong = cli("--source", f"redis://:nope-{secret[::-1]}@127.0.0.1:{server.port}/flows", "--group", "g")
        _, err = wrong.communicate(timeout=60)
        assert wrong.returncode == 2 and "refused the credentials" in err and "nope-" not in err, err
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_with_rediss(tmp_path, raw_test_lines):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server = RedisServer(tmp_path, "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file",
                         str(cert), "--tls-auth-clients", "no", tls=True,
                         client_options={"ssl": True, "ssl_ca_certs": str(cert)})
    try:
        ids = add_lines(server.client, raw_test_lines[:30])
        log = tmp_path / "alerts.jsonl"
        proc = cli("--source", f"rediss://127.0.0.1:{server.port}/flows", "--group", "g", "--alerts", str(log),
                   "--alerts", f"rediss://127.0.0.1:{server.port}/alerts", EVERYTHING,
                   env={"ANODET_REDIS_CA_CERT": str(cert)})
        try:
            assert wait_for(lambda: drained(server.client, 30), 120)
            stop(proc)
        finally:
            proc.kill()
        assert sorted(entries_of(log)) == sorted(ids) and server.client.xlen("alerts") == 30
        plain = cli("--source", f"redis://127.0.0.1:{server.port}/flows", "--group", "g")
        _, err = plain.communicate(timeout=60)
        assert plain.returncode == 2 and "rediss://" in err  # the sentence says how to fix it
    finally:
        server.stop()


def test_redis_restarted_without_persistence_the_group_is_created_again(server, tmp_path, raw_test_lines):
    log = tmp_path / "alerts.jsonl"
    proc = cli("--source", server.url("flows"), "--group", "g", "--alerts", str(log), EVERYTHING)
    try:
        first = add_lines(server.client, raw_test_lines[:100])
        assert wait_for(lambda: drained(server.client, 100), 120)
        server.restart(down_for=0.5)  # the stream and its consumer group are gone
        second = add_lines(server.client, raw_test_lines[100:200])
        assert wait_for(lambda: drained(server.client, 100), 120)
        err = stop(proc)
    finally:
        proc.kill()
    assert sorted(entries_of(log)) == sorted(first + second)  # after the restart, each decided once
    assert "created it again, reading from the start of the stream" in err
