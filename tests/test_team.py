"""A team server (issue 31, part 2): ownership and sharing, delete, quotas, cancelling trainings, bounded inspection,
uploads that go with their session, and no server paths in what pages show."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import numpy as np
import pytest

from anodet.access import AccessDenied, audit
from anodet.access.quotas import BUDGET, QuotaExceeded
from anodet.cli import main
from anodet.datasets import catalog, inspection, inspection_cache, ownership, uploads, userdata
from anodet.datasets.errors import DatasetError
from anodet.scoring import cache
from anodet.textsafe import without_paths
from anodet.training import jobs
from tests.conftest import principals, wdbc_frame

VIEWER, ANN, OTTO, ADMIN = principals()


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    monkeypatch.delenv("ANODET_AUDIT_LOG", raising=False)
    policy = tmp_path / "policy.toml"
    policy.write_text('[users]\n"vera@example.com" = "viewer"\n"adam@example.com" = "admin"\n'
                      '[domains]\n"example.com" = "analyst"\n')
    monkeypatch.setenv("ANODET_POLICY", str(policy))
    inspection_cache.forget()
    return folder


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(path, index=False)
    return path


def quotas(tmp_path, **limits) -> None:
    policy = tmp_path / "policy.toml"
    table = "\n".join(f"{k} = {v}" for k, v in limits.items())
    policy.write_text(policy.read_text() + f"[quotas]\n{table}\n")
    os.utime(policy, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new version of the file: read again


def one_sentence(text: str) -> bool:
    return "\n" not in text and text.endswith(".") and ". " not in text.rstrip(".")


def denied() -> list[tuple[str, str, str]]:
    return [(e["actor"]["id"], e["action"], e.get("detail", "")) for e in audit.read() if e["outcome"] == "denied"]


# -- who sees what ----------------------------------------------------------------------------------------------


def test_private_datasets_are_nowhere_for_others(csv, capsys):
    userdata.add("annsecret", csv, label="diagnosis", principal=ANN)  # private by default
    userdata.add("teamdata", csv, label="diagnosis", principal=OTTO, sharing="team")
    userdata.add("operator", csv, label="diagnosis")  # the command line's, private
    for name in ("annsecret", "teamdata", "operator"):
        (userdata.store_root(name)).mkdir(parents=True)
        (userdata.store_root(name) / "manifest.json").write_text("{}")  # trained, so the sidebar would list it

    assert ownership.visible(VIEWER) == ["teamdata"]
    assert ownership.visible(ANN) == ["annsecret", "teamdata"]
    assert ownership.visible(ADMIN) == ownership.visible() == ["annsecret", "operator", "teamdata"]
    assert catalog.available(OTTO) == ["kdd", "teamdata"]  # the sidebar's switch
    assert [r["dataset"] for r in jobs.catalogue(VIEWER)] == ["teamdata"]  # Your data's list
    assert [(r["dataset"], r["owner"], r["shared"]) for r in jobs.catalogue(ANN)] == [
        ("annsecret", "ann@example.com", "private"), ("teamdata", "otto@example.com", "team")]

    capsys.readouterr()
    assert main(["dataset", "list", "--as", "vera@example.com"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["teamdata"]
    assert main(["dataset", "list"]) == 0  # the operator sees every one
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["annsecret", "operator", "teamdata"]
    assert main(["dataset", "show", "annsecret", "--as", "otto@example.com"]) == 2
    err = capsys.readouterr().err
    assert "There is no dataset 'annsecret' that otto@example.com may see" in err and "ann@" not in err


def test_a_private_name_is_taken_without_naming_its_owner(csv):
    userdata.add("annsecret", csv, label="diagnosis", principal=ANN)
    with pytest.raises(AccessDenied) as err:
        userdata.add("annsecret", csv, label="diagnosis", replace=True, principal=OTTO)
    assert str(err.value) == ("A dataset named 'annsecret' already exists on this server and is not yours; choose "
                              "another name.")
    assert ownership.meta("annsecret") == ("ann@example.com", "private")
    assert denied()[-1][:2] == ("otto@example.com", "replace")


def test_sharing_is_the_owners_choice(csv, capsys):
    userdata.add("flows", csv, label="diagnosis", principal=ANN, sharing="team")
    with pytest.raises(AccessDenied) as err:
        ownership.share("flows", "private", OTTO)
    assert str(err.value) == ("otto@example.com may not share dataset 'flows': it belongs to ann@example.com, and only "
                              "its owner or an admin may.")
    ownership.share("flows", "private", ANN)
    assert ownership.visible(OTTO) == [] and ownership.visible(ANN) == ["flows"]
    assert main(["dataset", "share", "flows", "team"]) == 0  # the operator may
    assert ownership.meta("flows") == ("ann@example.com", "team")
    assert "shared with the team" in "\n".join(userdata.load("flows").lines())
    assert [(e["actor"]["id"], e["action"], e["outcome"]) for e in audit.read() if e["action"] == "share"] == [
        ("otto@example.com", "share", "denied"), ("ann@example.com", "share", "ok"),
        (audit.read()[-1]["actor"]["id"], "share", "ok")]


# -- delete ---------------------------------------------------------------------------------------------------------


def test_delete_removes_declaration_splits_store_inputs_and_cached_scores(csv, tmp_path, capsys):
    with open(csv, "rb") as f:
        up = uploads.save("u1", "train", "wdbc.csv", f, principal=ANN)
    uploads.add_from_uploads("wdbc", up, label="diagnosis", normal="B", principal=ANN, sharing="team")
    from anodet.training.datasets import train

    train("wdbc", ["pca"], principal=ANN, log=lambda _m: None)
    d = userdata.load("wdbc")
    store_hash = __import__("hashlib").sha256((d.store_root / "manifest.json").read_bytes()).hexdigest()
    scores = cache.path_for(store_hash, d.checksums(), "test")
    cache.write(scores, {"pca@wdbc": np.zeros(3)}, np.arange(3))
    assert scores.is_file() and (d.folder / "input").is_dir() and (d.folder / "splits").is_dir()

    with pytest.raises(AccessDenied) as err:
        ownership.delete("wdbc", OTTO)
    assert one_sentence(str(err.value)) and "may not delete dataset 'wdbc'" in str(err.value)
    assert d.folder.is_dir()

    from anodet.store.swap import StoreLock

    lock = StoreLock(d.store_root)
    assert lock.try_acquire()  # a training (of any process) writing its store
    try:
        with pytest.raises(DatasetError, match="is being trained"):
            ownership.delete("wdbc", ANN)
    finally:
        lock.release()
    removed = ownership.delete("wdbc", ANN)
    assert not d.folder.exists() and not scores.exists() and scores in removed
    assert userdata.list_datasets() == []
    assert [(e["actor"]["id"], e["action"], e["outcome"]) for e in audit.read() if e["action"] == "delete"] == [
        ("otto@example.com", "delete", "denied"), ("ann@example.com", "delete", "failed"),
        ("ann@example.com", "delete", "ok")]


def test_delete_on_the_command_line_asks_first(csv, capsys):
    userdata.add("wdbc", csv, label="diagnosis")
    assert main(["dataset", "delete", "wdbc"]) == 2  # not a terminal: no question can be asked
    assert "add --yes" in capsys.readouterr().err and userdata.list_datasets() == ["wdbc"]
    assert main(["dataset", "delete", "wdbc", "--as", "otto@example.com", "--yes"]) == 2
    assert "There is no dataset 'wdbc' that otto@example.com may see" in capsys.readouterr().err
    assert main(["dataset", "delete", "wdbc", "--yes"]) == 0
    assert "deleted dataset wdbc" in capsys.readouterr().out and userdata.list_datasets() == []
    assert [e["outcome"] for e in audit.read() if e["action"] == "delete"] == ["denied", "ok"]


# -- trainings: queue, quota, cancel ---------------------------------------------------------------------------------


def _slow_trainer(started: threading.Event):
    def trainer(name, detectors, seed=0, log=print, progress=None, lock_timeout=None, principal=None):
        started.set()
        for step in range(600):
            progress(step, 600, "pca@" + name)  # raises Cancelled once cancelled
            time.sleep(0.05)
        return {"detectors": {}}

    return trainer


def test_cancel_a_training_and_delete_only_when_none_is_queued(csv, tmp_path):
    userdata.add("wdbc", csv, label="diagnosis", principal=ANN, sharing="team")
    userdata.add("other", csv, label="diagnosis", principal=ANN)
    quotas(tmp_path, trainings=1)
    started = threading.Event()
    job = jobs.start("wdbc", ["pca"], trainer=_slow_trainer(started), principal=ANN)
    assert started.wait(30)
    with pytest.raises(QuotaExceeded) as err:  # one training of hers at a time
        jobs.start("other", ["pca"], trainer=_slow_trainer(threading.Event()), principal=ANN)
    assert one_sentence(str(err.value)) and "wait for one to end or cancel it" in str(err.value)
    with pytest.raises(DatasetError, match="cancel the training"):
        jobs.delete_dataset("wdbc", ANN)
    with pytest.raises(AccessDenied, match="may not cancel training 'wdbc'"):
        jobs.cancel("wdbc", OTTO)
    assert jobs.cancel("wdbc", ANN) is job
    assert job.wait(30) and job.status == jobs.CANCELLED
    jobs.delete_dataset("wdbc", ANN)
    assert userdata.list_datasets() == ["other"]
    actions = [(e["actor"]["id"], e["action"], e["outcome"]) for e in audit.read()]
    assert ("ann@example.com", "train", "started") in actions and ("ann@example.com", "cancel", "ok") in actions
    assert ("otto@example.com", "cancel", "denied") in actions and ("ann@example.com", "train", "denied") in actions


# -- quotas -----------------------------------------------------------------------------------------------------------


def test_quotas_on_datasets_disk_and_uploads(csv, tmp_path):
    quotas(tmp_path, datasets=1, disk_mb=1, uploads_mb=0.2)
    userdata.add("first", csv, label="diagnosis", principal=ANN)
    with pytest.raises(QuotaExceeded) as err:
        userdata.add("second", csv, label="diagnosis", principal=ANN)
    assert str(err.value) == ("ann@example.com owns 1 dataset(s), the most one user may have on this server (1); "
                              "delete one on Your data, or ask an admin to raise the quota.")
    assert "second" not in userdata.list_datasets()
    userdata.add("second", csv, label="diagnosis")  # the command line is the operator: no quota

    big = tmp_path / "big.csv"
    frame = wdbc_frame()
    frame.sample(len(frame) * 16, replace=True, random_state=0).to_csv(big, index=False)  # ~1.2 MB
    with pytest.raises(QuotaExceeded, match=r"This would bring your datasets to .* over the quota of 1\.0 MB"):
        userdata.add("first", big, label="diagnosis", replace=True, principal=ANN)

    with open(csv, "rb") as f:
        uploads.save("u1", "train", "a.csv", f, principal=OTTO)
    with open(big, "rb") as f, pytest.raises(QuotaExceeded, match=r"unconfirmed uploads to .* over the quota of 0\.2"):
        uploads.save("u2", "train", "big.csv", f, principal=OTTO)
    assert not (uploads.uploads_root() / "u2").exists()
    assert all(one_sentence(d) for _, _, d in denied())
    assert [a for _, a, _ in denied()] == ["declare", "replace", "upload"]


def test_inspection_is_kept_per_file_and_options_and_bounded(csv, tmp_path, monkeypatch):
    calls: list[list[str]] = []
    real_scan = inspection_cache.scan

    def counting(path, names, *args, **kwargs):
        calls.append(list(names))
        return real_scan(path, names, *args, **kwargs)

    monkeypatch.setattr(inspection_cache, "scan", counting)
    options = [dict(label="diagnosis"), dict(label="diagnosis", normal="B"),
               dict(label="diagnosis", categorical=("mean radius",)), dict(label="diagnosis", exclude=("mean area",)),
               dict(label=None)]
    for opts in options:
        kept = inspection_cache.inspect(csv, ANN, **opts)
        plain = inspection.inspect(csv, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()})
        assert ([c.to_json() for c in kept.columns], kept.rows, kept.label, kept.normal, kept.notes) == (
            [c.to_json() for c in plain.columns], plain.rows, plain.label, plain.normal, plain.notes)
    width = len(wdbc_frame().columns)
    # one full scan; the normal value changed nothing read; each option that reads a column differently (as a
    # category, left out, the label's column checked for numbers) scanned that column alone
    assert [len(c) for c in calls] == [width, 1, 1, 1]
    assert calls[1:] == [["mean radius"], ["mean area"], ["diagnosis"]]
    inspection_cache.inspect(csv, ANN, label="diagnosis", categorical=("mean radius",))
    assert len(calls) == 4  # kept

    used, _ = BUDGET.used(ANN.id)
    assert used > 0
    quotas(tmp_path, inspection_seconds=0)
    with pytest.raises(QuotaExceeded, match="of file inspection in the last 10 minutes"):
        inspection_cache.inspect(csv, ANN, label="diagnosis", categorical=("worst area",))
    inspection_cache.inspect(csv, ANN, label="diagnosis", normal="B")  # what is kept costs nothing
    inspection_cache.inspect(csv, None, label="diagnosis", categorical=("worst area",))  # the operator: no budget


# -- uploads and their sessions ---------------------------------------------------------------------------------------


def test_uploads_record_their_owner_and_go_when_stale_or_their_session_ends(csv):
    from anodet.app.session_files import SessionFiles

    with open(csv, "rb") as f:
        a = uploads.save("ua", "train", "mine.csv", f, principal=ANN)
    with open(csv, "rb") as f:
        b = uploads.save("ub", "test", "mine.csv", f, principal=ANN)
    assert uploads.uploader(a.parent) == "ann@example.com"
    assert uploads.upload_usage("ann@example.com") >= 2 * csv.stat().st_size
    session = SessionFiles()
    session.add(a)
    session.add(b)
    session.remove_all()  # what the session's release does when its tab goes
    assert not a.parent.exists() and not b.parent.exists() and uploads.upload_usage("ann@example.com") == 0

    with open(csv, "rb") as f:
        c = uploads.save("uc", "train", "mine.csv", f, principal=ANN)
    old = time.time() - uploads.STALE_SECONDS - 10
    os.utime(c.parent, (old, old))
    with pytest.raises(AccessDenied, match="may not upload files"):
        uploads.save("ud", "train", "mine.csv", io.BytesIO(b"x,y\n1,2\n"), principal=VIEWER)
    assert uploads.clean_stale() == 1 and not c.parent.exists()
    assert not (uploads.uploads_root() / "ud").exists()


# -- no server paths -------------------------------------------------------------------------------------------------


def test_no_server_paths_in_what_pages_show(csv, data_dir):
    root = str(data_dir.resolve())
    assert without_paths(f"No model store at {root}/datasets/x/store. Run it.") == \
        "No model store at data/datasets/x/store. Run it."
    assert without_paths("There is no file /srv/private/in.csv; check it (see http://127.0.0.1:8501/x).") == \
        "There is no file in.csv; check it (see http://127.0.0.1:8501/x)."
    userdata.add("wdbc", csv, label="diagnosis", principal=ANN)
    shown = "\n".join(userdata.load("wdbc").lines())
    assert str(csv.parent) not in shown and root not in shown and "sha256" in shown
    job = jobs.Job("wdbc", None)
    job.log(f"wrote {root}/datasets/wdbc/store/manifest.json (1 detectors)")
    assert job.lines == ["wrote data/datasets/wdbc/store/manifest.json (1 detectors)"]
    json.dumps(job.snapshot())
