"""A team server in a real headless Chromium, signed in through a real OpenID Connect provider on 127.0.0.1.

Datasets owned by different people sit in the server's (temporary) data folder: an admin's shared one, an
admin's private one, an analyst's private one. An analyst sees only what is hers or shared and is refused
training or replacing the admin's dataset; the admin sees everything, trains and replaces the analyst's dataset
and deletes one after a confirmation; a viewer cannot upload (the library refuses too); an upload left
unconfirmed goes when its tab closes. Every refusal is one sentence on the page and a line in the audit log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from anodet.access import AccessDenied, audit
from anodet.access.identity import as_user
from anodet.access.policy import load_policy
from tests.conftest import ROOT, wait_for, wdbc_frame
from tests.e2e.conftest import CHROMIUM, screenshot, start_app, stop_app, wait_idle
from tests.e2e.signin import POLICY, SIDEBAR, Team, on_sign_in_page, provider, secrets_toml, shown_text, sign_in

pytestmark = pytest.mark.e2e
pytest.importorskip("authlib", reason="Streamlit's st.login needs Authlib (requirements.txt)")
pytest.importorskip("oidc_provider_mock", reason="the test provider (requirements-dev.txt)")

ANN, ADMIN, VERA = "ann@analysts.example.com", "admin@example.com", "vera@example.com"
MAIN = "[data-testid='stMain']"
ERROR = "[data-testid='stAlertContentError']"


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Iterator[tuple[Team, Path]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (test.sh installs it)")
    folder = tmp_path_factory.mktemp("teamdata")
    data = folder / "data"
    data.mkdir()
    if (ROOT / "data" / "cache").is_dir():  # the KDD splits and dashboard scores already built here
        (data / "cache").symlink_to(ROOT / "data" / "cache")
    log, policy = folder / "audit.jsonl", folder / "policy.toml"
    policy.write_text(POLICY)
    env = {"ANODET_DATA_DIR": str(data), "ANODET_AUDIT_LOG": str(log), "ANODET_POLICY": str(policy)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the datasets below are declared as these users, in the server's data folder
    try:
        _declare(folder)
        with provider(timedelta(hours=1)) as issuer:
            (folder / "secrets.toml").write_text(secrets_toml(issuer))
            proc, url = start_app({**env, "STREAMLIT_SECRETS_FILES": str(folder / "secrets.toml")})
            try:
                yield Team(url, log, policy), data
            finally:
                stop_app(proc)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _declare(folder: Path) -> None:
    from anodet.datasets import userdata
    from anodet.training.datasets import train

    csv = folder / "wdbc.csv"
    wdbc_frame().to_csv(csv, index=False)
    admin, ann = as_user(ADMIN, load_policy()), as_user(ANN, load_policy())
    for name, who, sharing, trained in (("teamflows", admin, "team", True), ("adminsecret", admin, "private", True),
                                        ("annsdata", ann, "private", False)):
        userdata.add(name, csv, label="diagnosis", normal="B", principal=who, sharing=sharing)
        if trained:
            train(name, ["pca"], principal=who, log=lambda _m: None)


def signed_in(browser, team: Team, user: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(team.url)
    on_sign_in_page(page)
    sign_in(page, team, user)
    page.get_by_role("heading", name="Overview").wait_for(timeout=180_000)
    wait_idle(page, timeout=180_000)
    return context, page


def open_your_data(page) -> None:
    page.get_by_role("link", name="Your data").click()
    page.get_by_role("heading", name="Your data", exact=True).wait_for(timeout=120_000)
    wait_idle(page, timeout=120_000)


def options_of(page, label: str, where: str = MAIN) -> list[str]:
    """The options a selectbox offers, as a user sees them when they open it."""
    page.locator(where).locator("[data-testid='stSelectbox']").filter(has_text=label).locator("input").click()
    listbox = page.locator("[role='listbox'] [role='option']")
    listbox.first.wait_for(timeout=30_000)
    found = [t.strip() for t in listbox.all_inner_texts()]
    page.keyboard.press("Escape")
    return found


def choose(page, label: str, option: str, where: str = MAIN) -> None:
    page.locator(where).locator("[data-testid='stSelectbox']").filter(has_text=label).locator("input").click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    wait_idle(page, timeout=120_000)


def one_sentence(text: str) -> bool:
    text = text.strip()
    return "\n" not in text and text.endswith(".") and ". " not in text.rstrip(".")


def errors(page) -> list[str]:
    return [t.replace("\u200b", "").strip() for t in page.locator(ERROR).all_inner_texts()]


def upload_under(page, tmp_path: Path, name: str) -> None:
    """Upload WDBC as a new training file and give the dataset ``name`` (the label column is suggested)."""
    src = tmp_path / "upload.csv"
    wdbc_frame().to_csv(src, index=False)
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Training file (CSV or Parquet)")
    uploader.locator("input[type='file']").set_input_files(str(src))
    page.get_by_text("Check the inferred columns").wait_for(timeout=120_000)
    wait_idle(page, timeout=120_000)
    box = page.get_by_role("textbox", name="Dataset name")
    box.fill(name)
    box.press("Enter")
    wait_idle(page, timeout=120_000)


def denied(team: Team) -> list[tuple[str, str, str]]:
    return [(e["actor"]["id"], e["action"], e.get("resource", "")) for e in audit.read(team.audit_log)
            if e["outcome"] == "denied"]


def test_analyst_sees_hers_and_shared_and_may_not_train_or_replace_others(team, browser, tmp_path):
    team, _ = team
    context, page = signed_in(browser, team, ANN)
    try:
        assert options_of(page, "Dataset", SIDEBAR) == ["KDD Cup 99 (built in)", "teamflows"]  # trained, seen
        open_your_data(page)
        assert options_of(page, "Dataset to train or look at") == ["annsdata", "teamflows"]
        assert "adminsecret" not in shown_text(page)

        choose(page, "Dataset to train or look at", "teamflows")
        refused_train = (f"{ANN} may not train dataset 'teamflows': it belongs to {ADMIN}, and only its owner or an "
                         "admin may.")
        page.locator(MAIN).get_by_text(f"Declared by {ADMIN}").wait_for(timeout=60_000)
        wait_idle(page)
        assert refused_train in shown_text(page, MAIN)  # said before anything is tried
        assert page.get_by_role("button", name="Delete…").count() == 0  # not hers to delete
        page.get_by_role("button", name="Train", exact=True).click()  # pressing Train anyway
        page.locator(ERROR).first.wait_for(timeout=60_000)
        wait_idle(page)
        assert errors(page) == [refused_train] and one_sentence(refused_train)
        screenshot(page, "team_analyst_train_refused")

        upload_under(page, tmp_path, "teamflows")
        page.get_by_text("Replace the dataset teamflows").click()
        wait_idle(page)
        page.get_by_role("button", name="Confirm and add the dataset").click()
        page.locator(ERROR).first.wait_for(timeout=120_000)
        wait_idle(page)
        refused_replace = (f"{ANN} may not replace dataset 'teamflows': it belongs to {ADMIN}, and only its owner "
                           "or an admin may.")
        assert refused_replace in errors(page) and one_sentence(refused_replace)
        screenshot(page, "team_analyst_replace_refused")
    finally:
        context.close()
    assert (ANN, "train", "dataset:teamflows") in denied(team) and (ANN, "replace", "dataset:teamflows") in denied(team)
    from anodet.datasets import ownership

    assert ownership.meta("teamflows") == (ADMIN, "team")
    assert [e["detail"] for e in audit.read(team.audit_log) if e["outcome"] == "denied" and e["actor"]["id"] == ANN
            ] == [refused_train, refused_replace]


def test_admin_trains_and_replaces_anothers_dataset_and_deletes_one_after_asking(team, browser, tmp_path):
    team, data = team
    context, page = signed_in(browser, team, ADMIN)
    try:
        open_your_data(page)
        assert options_of(page, "Dataset to train or look at") == ["adminsecret", "annsdata", "teamflows"]
        choose(page, "Dataset to train or look at", "annsdata")
        page.locator(MAIN).get_by_text(f"Declared by {ANN}").wait_for(timeout=60_000)
        wait_idle(page)
        detectors = page.locator("[data-testid='stMultiSelect']").filter(has_text="Detectors to train")
        detectors.get_by_role("button", name="Clear all").click()  # only PCA: quick on a loaded machine
        detectors.locator("input").click()
        page.keyboard.type("PCA")
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        chosen = detectors.inner_text()
        assert "PCA" in chosen and "Isolation Forest" not in chosen, chosen
        page.get_by_role("button", name="Train", exact=True).click()
        page.get_by_text(re.compile(r"Trained 1 detectors in")).wait_for(timeout=300_000)
        wait_idle(page, timeout=120_000)
        assert errors(page) == []

        upload_under(page, tmp_path, "annsdata")
        page.get_by_text("Replace the dataset annsdata").click()
        wait_idle(page)
        page.get_by_role("button", name="Confirm and add the dataset").click()
        page.get_by_text("Dataset annsdata added").wait_for(timeout=180_000)
        wait_idle(page, timeout=120_000)
        assert errors(page) == []

        choose(page, "Dataset to train or look at", "adminsecret")
        page.locator(MAIN).get_by_text(f"Declared by {ADMIN}; seen by only its owner").wait_for(timeout=60_000)
        wait_idle(page)
        page.get_by_role("button", name="Delete…").click()
        page.get_by_text("Delete dataset adminsecret for everyone?").wait_for(timeout=60_000)
        wait_idle(page)
        screenshot(page, "team_admin_delete_confirm")
        assert (data / "datasets" / "adminsecret").is_dir()  # nothing removed before the answer
        page.get_by_role("button", name="Delete adminsecret").click()
        page.get_by_text("Dataset adminsecret deleted").wait_for(timeout=120_000)
        wait_idle(page)
        assert not (data / "datasets" / "adminsecret").exists()
        assert options_of(page, "Dataset to train or look at") == ["annsdata", "teamflows"]
    finally:
        context.close()
    from anodet.datasets import ownership

    assert ownership.meta("annsdata") == (ANN, "private")  # replaced by the admin, still hers
    outcomes = [(e["actor"]["id"], e["action"], e["outcome"], e.get("resource")) for e in audit.read(team.audit_log)]
    for line in [(ADMIN, "train", "started", "dataset:annsdata"), (ADMIN, "train", "ok", "dataset:annsdata"),
                 (ADMIN, "replace", "ok", "dataset:annsdata"), (ADMIN, "delete", "ok", "dataset:adminsecret"),
                 (ADMIN, "sign-in", "ok", None)]:
        assert line in outcomes, line


def test_viewer_cannot_upload_and_an_unconfirmed_upload_goes_with_its_tab(team, browser, tmp_path):
    team, data = team
    context, page = signed_in(browser, team, VERA)
    try:
        open_your_data(page)
        refused = (f"{VERA} is a viewer and may not declare datasets: that needs the analyst role, which an admin "
                   "gives in the access policy.")
        assert refused in shown_text(page, MAIN)
        assert page.locator(f"{MAIN} [data-testid='stFileUploader']").count() == 0  # nothing to upload with
        screenshot(page, "team_viewer_your_data")
    finally:
        context.close()
    from anodet.datasets import uploads

    viewer = as_user(VERA, load_policy())
    with open(tmp_path / "x.csv", "wb+") as f, pytest.raises(AccessDenied) as err:  # the library refuses too
        f.write(b"a,b\n1,2\n")
        f.seek(0)
        uploads.save("forged", "train", "x.csv", f, principal=viewer)
    assert one_sentence(str(err.value)) and "may not upload files" in str(err.value)
    assert (VERA, "upload", "file:x.csv") in denied(team) and not (data / "uploads" / "forged").exists()

    context, page = signed_in(browser, team, ANN)
    try:
        open_your_data(page)
        upload_under(page, tmp_path, "leftover")
        folders = [f for f in (data / "uploads").iterdir() if f.is_dir() and uploads.uploader(f) == ANN]
        assert len(folders) == 1 and any(folders[0].iterdir())
    finally:
        context.close()  # the tab goes: its session's unconfirmed upload goes too
    assert wait_for(lambda: not folders[0].exists(), timeout=120)
