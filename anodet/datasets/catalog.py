"""Every dataset anodet knows, in the one dataset model: KDD Cup 99 (built in) and the users' declared datasets."""

from __future__ import annotations

from anodet.access.identity import Principal
from anodet.datasets import kdd, ownership, userdata
from anodet.datasets.errors import DatasetError
from anodet.datasets.model import Declaration
from anodet.store.core import MANIFEST

KDD = "kdd"
"""The key of the built-in dataset (no user dataset may be called so: names starting 'kdd' are refused)."""


def trained(principal: Principal | None = None) -> list[str]:
    """User datasets with a trained model store that ``principal`` sees (the command line's operator, who sees
    all, when None), sorted: the ones the dashboard can show them."""
    out = []
    for name in ownership.visible(principal):
        try:
            if (userdata.store_root(name) / MANIFEST).is_file():
                out.append(name)
        except DatasetError:
            continue
    return out


def available(principal: Principal | None = None) -> list[str]:
    """Every dataset the dashboard can show ``principal``: KDD first, then the trained user datasets they see."""
    return [KDD, *trained(principal)]


def get(key: str) -> Declaration:
    """The declaration of dataset ``key`` (:data:`KDD` or a user dataset's name); a DatasetError when unknown."""
    if key == KDD:
        return kdd.declaration()
    return userdata.load(key).declaration()


def describe(key: str) -> str:
    """The dataset's name as the switch shows it."""
    return "KDD Cup 99 (built in)" if key == KDD else key
