"""Who owns, sees, shares and deletes users' datasets.

A declaration records its ``owner`` (the principal that declared it) and its ``sharing``:
``private`` (the default: its owner and the admins see it) or ``team`` (every signed-in user
sees it). A dataset nobody sees is nowhere for them: not in the sidebar's switch, not on Your
data, not in ``dataset list`` run as them. Only its owner or an admin replaces, trains, shares or
deletes it (:mod:`anodet.access.permissions`). Streamlit-free.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from anodet.access import audit
from anodet.access.identity import Principal, cli_principal
from anodet.access.permissions import PRIVATE, SHARING, AccessDenied, may_see, require
from anodet.datasets.errors import DatasetError
from anodet.datasets.userdata import DECLARATION, STORE_DIR, UserDataset, dataset_dir, list_datasets, load


def read_doc(name: str) -> dict[str, Any] | None:
    """Dataset ``name``'s declaration as stored, or None when it is not declared (or cannot be read)."""
    try:
        doc = json.loads((dataset_dir(name) / DECLARATION).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def owner_of(doc: dict[str, Any] | None) -> str | None:
    """Who declared the dataset (a principal's id), or None when the declaration does not say."""
    found = (doc or {}).get("owner")
    return found if isinstance(found, str) and found else None


def sharing_of(doc: dict[str, Any] | None) -> str:
    """``team`` when the owner shares the dataset with every signed-in user, else ``private``."""
    value = (doc or {}).get("sharing")
    return str(value) if value in SHARING else PRIVATE


def meta(name: str) -> tuple[str | None, str]:
    """(owner, sharing) of dataset ``name`` (``(None, "private")`` when it is not declared), read once per version
    of its declaration: pages ask on every run, and a declaration of a wide file is megabytes of JSON."""
    path = dataset_dir(name) / DECLARATION
    try:
        st = path.stat()
    except OSError:
        return None, PRIVATE
    return _meta(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=512)
def _meta(path: str, stamp: int, size: int) -> tuple[str | None, str]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None, PRIVATE
    doc = doc if isinstance(doc, dict) else {}
    return owner_of(doc), sharing_of(doc)


def sees(principal: Principal | None, name: str) -> bool:
    """Does ``principal`` (the command line's operator when None) see dataset ``name``?"""
    owner, sharing = meta(name)
    return may_see(principal, owner, sharing)


def hidden_from(principal: Principal | None, name: str, doc: dict[str, Any], action: str) -> None:
    """Refuse (audited, one sentence) an action on a dataset ``principal`` does not see, without naming its owner."""
    actor = principal if principal is not None else cli_principal()
    if may_see(actor, owner_of(doc), sharing_of(doc)):
        return
    message = (f"A dataset named {name!r} already exists on this server and is not yours; choose another name."
               if action in ("declare", "replace") else
               f"There is no dataset {name!r} that {actor.id} may see; the list of datasets shows the ones you may.")
    audit.record(actor, action, audit.DENIED, f"dataset:{name}", message)
    raise AccessDenied(message, actor, action, f"dataset:{name}")


def visible(principal: Principal | None = None) -> list[str]:
    """The declared datasets ``principal`` sees (the command line's operator, who sees all, when None), sorted."""
    return [n for n in list_datasets() if sees(principal, n)]


def owned_by(owner: str) -> list[str]:
    """The datasets ``owner`` declared."""
    return [n for n in list_datasets() if meta(n)[0] == owner]


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 when it does not exist)."""
    total = 0
    for base, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(base, f)).st_size
            except OSError:
                continue
    return total


def disk_usage(owner: str, excluding: str | None = None) -> int:
    """Bytes of the datasets ``owner`` declared (inputs, splits, stores), leaving out dataset ``excluding``."""
    return sum(folder_bytes(dataset_dir(n)) for n in owned_by(owner) if n != excluding)


def share(name: str, sharing: str, principal: Principal | None = None) -> None:
    """Make dataset ``name`` ``private`` or shared with the ``team``; its owner or an admin (``principal``, the
    command line's operator when None) may. Audited."""
    if sharing not in SHARING:
        raise DatasetError(f"Unknown sharing {sharing!r}; choose {' or '.join(SHARING)}.")
    doc = read_doc(name)
    if doc is None:
        load(name)  # the DatasetError naming the declared ones
        raise DatasetError(f"The declaration of dataset {name!r} cannot be read.")
    resource = f"dataset:{name}"
    hidden_from(principal, name, doc, "share")
    actor = require(principal, "share", owner_of(doc), resource=resource)
    if sharing_of(doc) != sharing:
        doc["sharing"] = sharing
        path = dataset_dir(name) / DECLARATION
        tmp = path.with_name(path.name + ".share.tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        tmp.replace(path)
    audit.record(actor, "share", audit.OK, resource, sharing)


def delete(name: str, principal: Principal | None = None) -> list[Path]:
    """Remove dataset ``name``: its declaration, splits, store, kept input files (all under its folder) and the
    dashboard's cached scores of its store; return the files removed.

    ``principal`` (default: the command line's operator) must own it or be an admin; a training
    writing its store (in any process) makes it a DatasetError. The outcome goes to the audit log.
    """
    from anodet.store.swap import StoreLock

    folder = dataset_dir(name)
    doc = read_doc(name)
    if doc is None:
        load(name)  # the DatasetError naming the declared ones
    resource = f"dataset:{name}"
    hidden_from(principal, name, doc or {}, "delete")
    actor = require(principal, "delete", owner_of(doc), resource=resource)
    lock = StoreLock(folder / STORE_DIR)
    if not lock.try_acquire():
        message = (f"Dataset {name!r} is being trained ({lock.holder()}); wait for the training to end, or cancel "
                   "it, then delete the dataset.")
        audit.record(actor, "delete", audit.FAILED, resource, message)
        raise DatasetError(message)
    try:
        removed = [p for p in folder.rglob("*") if p.is_file()]
        removed += _forget_scores(UserDataset(name, doc or {}))
        shutil.rmtree(folder)
    except OSError as exc:
        message = (f"Dataset {name!r} could not be deleted completely ({exc.strerror or type(exc).__name__}); "
                   "the server's operator should look at its folder.")
        audit.record(actor, "delete", audit.FAILED, resource, message)
        raise DatasetError(message) from None
    finally:
        lock.release()
    audit.record(actor, "delete", audit.OK, resource, f"{len(removed)} files")
    return removed


def _forget_scores(dataset: UserDataset) -> list[Path]:
    """Remove the dashboard's cached split scores of the dataset's store (they are named by its hashes)."""
    from anodet.scoring import cache

    manifest = dataset.store_root / "manifest.json"
    try:
        store_hash = hashlib.sha256(manifest.read_bytes()).hexdigest()
        checksums = dataset.checksums()
    except (OSError, KeyError, TypeError):
        return []
    out = []
    for split in cache.SPLITS:
        path = cache.path_for(store_hash, checksums, split)
        if path.is_file():
            path.unlink()
            out.append(path)
    return out
