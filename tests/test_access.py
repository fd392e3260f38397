"""Who may do what (issue 31): the policy file, roles from ID-token claims, the checks in the library's actions,
and the audit log they write."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest

from anodet.access import AccessDenied, audit, cli_principal, require
from anodet.access.identity import from_claims
from anodet.access.policy import Policy, PolicyError, load_policy, parse_policy
from anodet.cli import main
from anodet.datasets import ownership, userdata
from anodet.datasets import uploads as dataset_uploads
from anodet.scoring import uploads as upload
from anodet.training import datasets as dataset_training
from anodet.training import jobs as training_jobs
from tests.conftest import principals, wdbc_frame

VIEWER, ANALYST, OTHER_ANALYST, ADMIN = principals()


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Datasets, uploads and the audit log go to a temporary data folder, never into the repository."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ANODET_DATA_DIR", str(folder))
    monkeypatch.delenv("ANODET_AUDIT_LOG", raising=False)
    monkeypatch.delenv("ANODET_POLICY", raising=False)
    return folder


def one_sentence(text: str) -> bool:
    return "\n" not in text and text.endswith(".") and ". " not in text.rstrip(".")


def lines(*keys: str) -> list[tuple]:
    return [tuple(e["actor"]["id"] if k == "actor" else e.get(k) for k in keys) for e in audit.read()]


# -- the policy file ------------------------------------------------------------------------------------------

POLICY = textwrap.dedent("""
    default_role = "viewer"
    groups_claim = "roles"
    session_hours = 8
    [users]
    "Alice@Example.com" = "admin"
    "mallory@corp.example" = "none"
    [domains]
    "corp.example" = "analyst"
    [groups]
    "secops" = "admin"
    "interns" = "viewer"
""")


def test_policy_roles_by_user_domain_group_and_default(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    policy = load_policy(path)
    assert policy.session_hours == 8 and policy.groups_claim == "roles"
    assert policy.role_for("alice@example.com") == "admin"  # e-mails compare in lower case
    assert policy.role_for("bob@corp.example") == "analyst"
    assert policy.role_for("bob@corp.example", ("secops",)) == "admin"  # the highest of domain and groups
    assert policy.role_for("bob@corp.example", ("interns",)) == "analyst"
    assert policy.role_for("mallory@corp.example", ("secops",)) is None  # a user's own line wins: kept out
    assert policy.role_for("eve@elsewhere.example") == "viewer"
    assert policy.role_for(None) == "viewer"
    assert Policy().role_for("anyone@example.com") == "viewer"  # no file: every signed-in user a viewer
    assert parse_policy({"default_role": "none"}).role_for("anyone@example.com") is None


@pytest.mark.parametrize(("text", "says"), [
    ('default_role = "editor"', "role 'editor'; use one of viewer, analyst, admin or 'none'"),
    ('[users]\n"bob" = "admin"', "'bob' under [users], which is not an e-mail address"),
    ('[domains]\n"x.org" = 3', "give a role as text"),
    ("users = 3", "write it as a [users] table"),
    ("session_hours = -1", "give a positive number of hours"),
    ('admins = ["a@b.c"]', "unknown key 'admins'"),
    ("[users\n", "is not valid TOML"),
    ("[quotas]\ndatasets = 2.5", "quotas.datasets = 2.5; give a whole number of at least 0"),
    ("[quotas]\nspace_mb = 1", "unknown quota 'space_mb'; the quotas are disk_mb, uploads_mb, datasets"),
    ("quotas = 3", "write it as a [quotas] table"),
])
def test_bad_policy_is_one_sentence(tmp_path, text, says):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert says in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_named_policy_file_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("ANODET_POLICY", str(tmp_path / "missing.toml"))
    with pytest.raises(PolicyError, match="cannot be read; create it or unset ANODET_POLICY"):
        load_policy()


def test_claims_to_principal(tmp_path):
    policy = parse_policy({"domains": {"corp.example": "analyst"}, "groups": {"secops": "admin"}})
    p = from_claims({"email": "Bob@Corp.Example", "sub": "42", "iss": "https://idp", "name": "Bob"}, policy)
    assert p is not None and (p.id, p.role, p.name, p.subject) == ("bob@corp.example", "analyst", "Bob", "https://idp|42")
    p = from_claims({"email": "c@x.org", "sub": "7", "groups": "secops other"}, policy)
    assert p is not None and p.role == "admin" and p.groups == ("secops", "other")
    # an unverified e-mail is neither matched nor used as the id: typing someone's address gains nothing
    p = from_claims({"email": "bob@corp.example", "email_verified": False, "sub": "99"}, policy)
    assert p is not None and (p.id, p.role) == ("sub:99", "viewer")


# -- the checks ---------------------------------------------------------------------------------------------


def test_role_matrix():
    from anodet.access import allowed

    assert [a for a in ("view", "upload", "score", "declare") if allowed(VIEWER, a)] == ["view"]
    assert [a for a in ("view", "upload", "score", "declare") if allowed(ANALYST, a)] == [
        "view", "upload", "score", "declare"]
    assert all(allowed(ADMIN, a) for a in ("view", "upload", "score", "declare", "train", "replace", "delete", "share"))
    for action in ("replace", "train", "delete", "share", "cancel"):
        assert allowed(ANALYST, action, resource_owner=ANALYST.id)
        assert not allowed(ANALYST, action, resource_owner=OTHER_ANALYST.id)
        assert not allowed(ANALYST, action, resource_owner=None)  # no recorded owner: admins only
        assert not allowed(VIEWER, action, resource_owner=VIEWER.id)
        assert allowed(ADMIN, action, resource_owner=OTHER_ANALYST.id)
    assert cli_principal().role == "admin" and cli_principal().source == "cli"


def test_refusal_is_one_sentence_and_audited():
    with pytest.raises(AccessDenied) as err:
        require(OTHER_ANALYST, "replace", resource_owner=ANALYST.id, resource="dataset:flows")
    message = str(err.value)
    assert message == ("otto@example.com may not replace dataset 'flows': it belongs to ann@example.com, and only its "
                       "owner or an admin may.")
    assert one_sentence(message)
    [entry] = audit.read()
    assert entry["actor"] == {"id": "otto@example.com", "role": "analyst", "source": "oidc"}
    assert (entry["action"], entry["outcome"], entry["resource"], entry["detail"]) == (
        "replace", "denied", "dataset:flows", message)
    assert require(None, "train", resource_owner="someone@example.com") == cli_principal()  # the operator: admin


def test_audit_log_survives_concurrent_writers(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("ANODET_AUDIT_LOG", str(log))
    writer = textwrap.dedent("""
        import sys
        from anodet.access import Principal, audit
        who = Principal(id=f"w{sys.argv[1]}@example.com", name="w", role="analyst")
        for i in range(300):
            audit.record(who, "declare", "ok", f"dataset:d{i}", "x" * 200)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(k)]) for k in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    raw = log.read_text().splitlines()
    assert len(raw) == 1200
    parsed = [json.loads(line) for line in raw]  # every line whole: no torn or interleaved writes
    for k in range(4):
        mine = [e["resource"] for e in parsed if e["actor"]["id"] == f"w{k}@example.com"]
        assert mine == [f"dataset:d{i}" for i in range(300)]  # each writer's lines in its own order


# -- the library's actions -------------------------------------------------------------------------------------


def test_viewer_cannot_score_an_upload_in_the_library(store, tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "uploads_dir", lambda: tmp_path / "scored")
    with pytest.raises(AccessDenied, match=r"vera@example.com is a viewer and may not score files"):
        upload.score_upload(io.BytesIO(b"duration\n1\n"), "mine.csv", store, ["pca"], {"pca": 1.0}, principal=VIEWER)
    assert not (tmp_path / "scored").exists()  # refused before anything is read or written
    assert lines("actor", "action", "outcome", "resource") == [("vera@example.com", "score", "denied", "file:mine.csv")]


def test_declare_replace_train_by_role(tmp_path):
    csv = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(csv, index=False)
    with pytest.raises(AccessDenied, match="may not declare datasets"):
        userdata.add("wdbc", csv, label="diagnosis", principal=VIEWER)
    assert userdata.list_datasets() == []

    userdata.add("wdbc", csv, label="diagnosis", normal="B", principal=ANALYST, sharing="team")
    assert ownership.meta("wdbc") == (ANALYST.id, "team")
    with pytest.raises(AccessDenied, match=r"it belongs to ann@example.com"):
        userdata.add("wdbc", csv, label="diagnosis", normal="B", replace=True, principal=OTHER_ANALYST)
    userdata.add("wdbc", csv, label="diagnosis", normal="B", replace=True, principal=ANALYST)  # its owner may
    userdata.add("wdbc", csv, label="diagnosis", normal="B", replace=True, principal=ADMIN)  # an admin may
    assert ownership.meta("wdbc") == (ANALYST.id, "team")  # replacing keeps the owner and the sharing

    trained_by_other = ("otto@example.com may not train dataset 'wdbc': it belongs to ann@example.com, and only its "
                        "owner or an admin may.")
    with pytest.raises(AccessDenied) as err:
        training_jobs.start("wdbc", ["pca"], principal=OTHER_ANALYST)
    assert str(err.value) == trained_by_other and one_sentence(str(err.value))
    assert training_jobs.get("wdbc") is None
    with pytest.raises(AccessDenied, match="may not train dataset 'wdbc'"):
        dataset_training.train("wdbc", ["pca"], principal=VIEWER, log=lambda _m: None)
    assert not (userdata.store_root("wdbc") / "manifest.json").exists()
    dataset_training.train("wdbc", ["pca"], principal=ANALYST, log=lambda _m: None)  # its owner trains it
    dataset_training.train("wdbc", ["pca"], principal=ADMIN, log=lambda _m: None)  # so does an admin

    assert lines("actor", "action", "outcome") == [
        ("vera@example.com", "declare", "denied"),
        ("ann@example.com", "declare", "ok"),
        ("otto@example.com", "replace", "denied"),
        ("ann@example.com", "replace", "ok"),
        ("adam@example.com", "replace", "ok"),
        ("otto@example.com", "train", "denied"),
        ("vera@example.com", "train", "denied"),
        ("ann@example.com", "train", "ok"),
        ("adam@example.com", "train", "ok"),
    ]


def test_refused_replace_from_uploads_touches_no_file(tmp_path):
    csv = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(csv, index=False)
    with open(csv, "rb") as f:
        first = dataset_uploads.save("u1", "train", "wdbc.csv", f, principal=ANALYST)
    dataset_uploads.add_from_uploads("wdbc", first, label="diagnosis", normal="B", principal=ANALYST, sharing="team")
    before = sorted(p.relative_to(userdata.dataset_dir("wdbc")) for p in userdata.dataset_dir("wdbc").rglob("*"))
    with open(csv, "rb") as f:
        with pytest.raises(AccessDenied, match="may not upload files"):
            dataset_uploads.save("u2", "train", "wdbc.csv", f, principal=VIEWER)
        second = dataset_uploads.save("u3", "train", "wdbc.csv", f, principal=OTHER_ANALYST)
    with pytest.raises(AccessDenied, match=r"it belongs to ann@example.com"):
        dataset_uploads.add_from_uploads("wdbc", second, replace=True, label="diagnosis", principal=OTHER_ANALYST)
    after = sorted(p.relative_to(userdata.dataset_dir("wdbc")) for p in userdata.dataset_dir("wdbc").rglob("*"))
    assert after == before and second.exists()


def test_the_command_line_acts_as_the_operator(tmp_path, capsys):
    csv = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(csv, index=False)
    assert main(["dataset", "add", "wdbc", "--train", str(csv), "--label", "diagnosis"]) == 0
    [entry] = audit.read()
    assert entry["actor"]["source"] == "cli" and entry["actor"]["role"] == "admin"
    assert entry["actor"]["id"].startswith("cli:") and (entry["action"], entry["outcome"]) == ("declare", "ok")
    assert ownership.meta("wdbc") == (entry["actor"]["id"], "private")
    assert main(["dataset", "add", "wdbc", "--train", str(csv), "--label", "nope", "--replace"]) == 2
    assert "nope" in capsys.readouterr().err
    assert [(e["action"], e["outcome"]) for e in audit.read()] == [("declare", "ok"), ("replace", "failed")]
