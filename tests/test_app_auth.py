"""The sign-in gate through Streamlit's AppTest (issue 31): what a visitor sees before and after sign-in, expiry,
accounts the policy keeps out, a viewer's refused scoring in the page, and the audit lines of each."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from anodet.access import audit

APP = str(Path(__file__).resolve().parent.parent / "app.py")
AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "0123456789abcdef0123456789",
        "client_id": "anodet", "client_secret": "s3cret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}


@pytest.fixture(autouse=True)
def audit_log(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("ANODET_AUDIT_LOG", str(log))
    monkeypatch.delenv("ANODET_POLICY", raising=False)
    return log


def app(user: dict | None, timeout: float = 300) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.secrets["auth"] = AUTH
    at.user = user if user is not None else {"is_logged_in": False}
    return at


def signed_in(email: str, lifetime: float = 3600, **claims) -> dict:
    """The claims st.user holds after a sign-in (each call a new sign-in: its own nonce)."""
    now = int(time.time())
    return {"is_logged_in": True, "email": email, "sub": email.split("@")[0], "iss": "http://127.0.0.1:9",
            "iat": now, "exp": now + lifetime, "nonce": secrets.token_hex(8), **claims}


def everything(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "error", "success")
             for e in getattr(at, kind)]
    parts += [b.label for b in at.button] + [e.value for e in at.sidebar.markdown]
    return "\n".join(str(p) for p in parts)


VIEWER_SENTENCE = ("vera@example.com is a viewer and may not score files: that needs the analyst role, which an admin "
                   "gives in the access policy.")


def plain(markdown: str) -> str:
    """Text as the reader sees it: no Markdown escapes, no zero-width spaces."""
    return markdown.replace("\u200b", "").replace("\\", "")


def entries() -> list[tuple[str, str, str]]:
    return [(e["actor"]["id"], e["action"], e["outcome"]) for e in audit.read()]


def test_signed_out_visitor_gets_the_sign_in_page_only():
    at = app(None, timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["anodet"]
    assert [b.label for b in at.button] == ["Sign in"]
    shown = everything(at)
    assert "KDD" not in shown and "Overview" not in shown and not any(ch.isdigit() for ch in shown), shown
    assert len(at.sidebar) == 0 and not at.selectbox and not at.radio and not at.dataframe
    assert entries() == []


def test_expired_sign_in_gets_the_sign_in_page_and_one_audit_line():
    user = signed_in("vera@example.com", lifetime=-1)
    at = app(user, timeout=60).run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Your sign-in has expired; sign in again."]
    assert [b.label for b in at.button] == ["Sign in"] and "KDD" not in everything(at)
    at.run()
    app(user, timeout=60).run()  # the same sign-in in a second tab
    assert entries() == [("vera@example.com", "session-expired", "ok")]


def test_account_the_policy_keeps_out(tmp_path, monkeypatch):
    policy = tmp_path / "policy.toml"
    policy.write_text('default_role = "none"\n[users]\n"ann@example.com" = "analyst"\n')
    monkeypatch.setenv("ANODET_POLICY", str(policy))
    at = app(signed_in("eve@example.com"), timeout=60).run()
    assert not at.exception
    [error] = at.error
    assert "may not use this server; ask its operator to add it to the access policy." in error.value
    assert [b.label for b in at.button] == ["Sign out"] and "KDD" not in everything(at)
    assert entries() == [("eve@example.com", "sign-in", "denied")]


def test_unusable_policy_keeps_everyone_out(tmp_path, monkeypatch):
    policy = tmp_path / "policy.toml"
    policy.write_text('default_role = "boss"\n')
    monkeypatch.setenv("ANODET_POLICY", str(policy))
    at = app(signed_in("adam@example.com"), timeout=60).run()
    assert [e.value for e in at.error] == [
        "Sign-in is unavailable: the server's access policy cannot be used; the operator's log says why."]
    assert "KDD" not in everything(at)


def test_local_server_exposed_without_sign_in_shows_nothing(monkeypatch):
    monkeypatch.delenv("ANODET_NO_AUTH", raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(APP, default_timeout=60).run()
    finally:
        config.set_option("server.address", before)
    [error] = at.error
    assert error.value.startswith("This server listens on 0.0.0.0 without sign-in, so it shows nothing")
    assert "KDD" not in everything(at)


def test_viewer_reads_but_cannot_score(store, splits):
    at = app(signed_in("vera@example.com", name="Vera")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.main.title] == ["Overview"]
    account = plain(" ".join(c.value for c in at.sidebar.caption))
    assert "Vera" in account and "vera@example.com" in account and "viewer" in account
    at.run()
    assert entries() == [("vera@example.com", "sign-in", "ok")]  # once per session, not once per run

    at.switch_page("app_pages/score_csv.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [plain(i.value) for i in at.info] == [VIEWER_SENTENCE]  # said before anything is tried
    at.button(key="score_go_example").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [plain(e.value) for e in at.error] == [VIEWER_SENTENCE]  # the library's refusal, in the page
    assert not at.metric  # nothing was scored
    assert entries()[-1] == ("vera@example.com", "score", "denied")


def test_your_data_by_role(tmp_path, monkeypatch):
    """An analyst declares a dataset (she owns it, private) and may train it; another analyst does not see it, and
    once it is shared sees it but his Train is refused in the page; a viewer may not add one."""
    from anodet.datasets import ownership
    from tests.test_app_your_data import add_wdbc

    monkeypatch.setenv("ANODET_DATA_DIR", str(tmp_path / "data"))
    policy = tmp_path / "policy.toml"
    policy.write_text('[domains]\n"corp.example" = "analyst"\n')
    monkeypatch.setenv("ANODET_POLICY", str(policy))

    at = app(signed_in("ann@corp.example"), timeout=120)
    at.switch_page("app_pages/your_data.py").run()
    assert not at.exception, [e.value for e in at.exception]
    add_wdbc(at)
    assert ownership.meta("wdbc") == ("ann@corp.example", "private")
    assert not [i for i in at.info if "may not train" in i.value]  # her own: she may train it
    assert at.radio(key="yd_sharing_wdbc_private").value == "private"

    otto = app(signed_in("otto@corp.example"), timeout=120)
    otto.switch_page("app_pages/your_data.py").run()
    assert not otto.exception, [e.value for e in otto.exception]
    assert not [d for d in otto.dataframe if d.key == "yd_catalogue"] and "wdbc" not in everything(otto)
    assert any("No dataset yet" in i.value for i in otto.info)  # her private dataset is nowhere for him

    at.radio(key="yd_sharing_wdbc_private").set_value("team").run()  # she shares it with the team
    assert ownership.meta("wdbc") == ("ann@corp.example", "team")
    otto.run()
    assert otto.selectbox(key="yd_dataset").options == ["wdbc"]
    trainer = ("otto@corp.example may not train dataset 'wdbc': it belongs to ann@corp.example, and only its owner "
               "or an admin may.")
    assert trainer in [plain(i.value) for i in otto.info]  # said before anything is tried
    assert not [b for b in otto.button if b.key == "yd_delete_wdbc"]  # not his to delete
    otto.button(key="yd_train_go").click().run()
    assert [plain(e.value) for e in otto.error] == [trainer]
    assert [(w, a, o) for w, a, o in entries() if a != "sign-in"] == [
        ("ann@corp.example", "declare", "ok"), ("ann@corp.example", "share", "ok"),
        ("otto@corp.example", "train", "denied")]

    viewer = app(signed_in("vera@example.com"), timeout=120)
    viewer.switch_page("app_pages/your_data.py").run()
    assert not viewer.exception, [e.value for e in viewer.exception]
    assert ("vera@example.com is a viewer and may not declare datasets: that needs the analyst role, which an admin "
            "gives in the access policy.") in [plain(i.value) for i in viewer.info]
    assert not viewer.file_uploader  # no file of hers reaches the server


def test_owner_deletes_after_confirming_and_cancels_her_training(tmp_path, monkeypatch):
    """Delete asks first (nothing removed before the answer, "Keep it" keeps it); the starter of a training cancels
    it from the page."""
    import threading

    from anodet.datasets import ownership, userdata
    from anodet.training import jobs
    from tests.conftest import wait_for, wdbc_frame

    monkeypatch.setenv("ANODET_DATA_DIR", str(tmp_path / "data"))
    policy = tmp_path / "policy.toml"
    policy.write_text('[domains]\n"corp.example" = "analyst"\n')
    monkeypatch.setenv("ANODET_POLICY", str(policy))
    csv = tmp_path / "wdbc.csv"
    wdbc_frame().to_csv(csv, index=False)
    from anodet.access.identity import as_user
    from anodet.access.policy import load_policy

    ann = as_user("ann@corp.example", load_policy())
    userdata.add("wdbc", csv, label="diagnosis", principal=ann)
    userdata.add("other", csv, label="diagnosis", principal=ann)

    at = app(signed_in("ann@corp.example"), timeout=120)
    at.switch_page("app_pages/your_data.py").run()
    at.selectbox(key="yd_dataset").set_value("wdbc").run()
    at.button(key="yd_delete_wdbc").click().run()
    assert any("Delete dataset **wdbc** for everyone?" in w.value for w in at.warning)
    assert (userdata.dataset_dir("wdbc") / userdata.DECLARATION).is_file()  # nothing removed before the answer
    at.button(key="yd_delete_no_wdbc").click().run()
    assert not at.warning and userdata.list_datasets() == ["other", "wdbc"]
    at.button(key="yd_delete_wdbc").click().run()
    at.button(key="yd_delete_yes_wdbc").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Dataset wdbc deleted" in s.value for s in at.success)
    assert userdata.list_datasets() == ["other"] and not userdata.dataset_dir("wdbc").exists()
    assert at.selectbox(key="yd_dataset").options == ["other"]

    started = threading.Event()

    def slow(name, detectors, seed=0, log=print, progress=None, lock_timeout=None, principal=None):
        started.set()
        for step in range(2000):
            progress(step, 2000, "pca@" + name)
            threading.Event().wait(0.05)
        return {"detectors": {}}

    job = jobs.start("other", ["pca"], trainer=slow, principal=ann)
    assert started.wait(30)
    at.run()
    at.button(key="yd_cancel_other").click().run()
    assert wait_for(lambda: job.status == jobs.CANCELLED, timeout=30)
    assert [(a, o) for _, a, o in entries() if a != "sign-in"] == [
        ("declare", "ok"), ("declare", "ok"), ("delete", "ok"), ("train", "started"), ("cancel", "ok")]
    assert ownership.visible(ann) == ["other"]
