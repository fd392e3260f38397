"""Which detectors a training fits, and why each one: the names asked for, expanded, plus what is built on them."""

from __future__ import annotations

from anodet.detectors import REGISTRY, known_kinds
from anodet.features.sets import BUILTIN, DEFAULT, kind_of, qualified, set_of_name, spec
from anodet.store.core import Store


def all_names(feature_sets: list[str] | None = None, kinds: list[str] | None = None) -> list[str]:
    """Every detector a full training writes: each kind (default: the built-in ones) on each feature set, in the
    order shown.

    An unknown feature set name is a ValueError naming the known ones.
    """
    return [qualified(kind, spec(fs).name) for fs in (feature_sets or list(BUILTIN)) for kind in (kinds or REGISTRY)]


def plugin_kinds(names: list[str] | None) -> list[str]:
    """The plug-in kinds among ``names`` (:mod:`anodet.detectors.plugins`), each checked to be known here."""
    kinds = list(dict.fromkeys(kind_of(n) for n in names or [] if kind_of(n) not in REGISTRY))
    unknown = [k for k in kinds if k not in known_kinds()]
    if unknown:
        raise ValueError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(known_kinds())}")
    return kinds


def expand_names(names: list[str] | None, feature_sets: list[str] | None = None,
                 known: list[str] | None = None) -> list[str]:
    """Stored names for ``names``: a kind (``pca``) means it on every chosen feature set; ``pca@kdd41`` itself,
    and ``pca@kdd18`` the one on the default set (stored as ``pca``).

    ``known``: every name there is (default: the built-in feature sets' detectors, and the plug-in kinds named).
    """
    kinds = [*REGISTRY, *plugin_kinds(names)]
    known = known if known is not None else all_names(None, kinds)
    everything = all_names(feature_sets, kinds) if feature_sets else known
    if not names:
        return everything
    wanted = set()
    for name in names:
        if "@" in name:
            wanted.add(kind_of(name) if set_of_name(name) == DEFAULT else name)
        else:
            wanted.update(n for n in everything if kind_of(n) == name)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(f"unknown detector(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [n for n in known if n in wanted]


def retrain_reasons(asked: list[str] | None, names: list[str], named: str = "named") -> dict[str, str]:
    """Why each of ``names`` (what ``asked`` expanded to) is trained: ``named`` (or how they were asked for: "in the
    quick preset"), or named by its kind."""
    if not asked:
        return {n: "a full training (no detectors named)" for n in names}
    explicit = {kind_of(a) if set_of_name(a) == DEFAULT else a for a in asked if "@" in a}
    kinds = {a for a in asked if "@" not in a}
    sets: dict[str, list[str]] = {}
    for n in names:
        sets.setdefault(kind_of(n), []).append(set_of_name(n))
    reasons = {}
    for n in names:
        kind = kind_of(n)
        if n in explicit or (n == kind and kind in kinds):
            reasons[n] = named
        elif len(sets[kind]) > 1:
            reasons[n] = (f"{named} as {kind}, which means {kind} on every feature set ({', '.join(sets[kind])}); "
                          f"give {' or '.join(f'{kind}@{fs}' for fs in sets[kind])} for one")
        else:
            reasons[n] = f"{named} as {kind}"
    return reasons


def with_dependents(names: list[str], previous: Store | None,
                     known: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """``names`` plus every stored detector built on one of them (its fit depends on their scores), and why."""
    retrained = set(names)
    why = {}
    if previous is not None:
        for name in previous.names:
            if name in retrained:
                continue
            changed = [m for m in previous.entry(name)["params"].get("members", []) if m in retrained]
            if changed:
                retrained.add(name)
                why[name] = (f"refitted too, since it is built on {', '.join(changed)} (its scale comes from its "
                             f"members' scores)")
    order = known if known is not None else all_names()
    return sorted(retrained, key=lambda n: order.index(n) if n in order else len(order)), why


def say_what_is_trained(names: list[str], reasons: dict[str, str], kept: list[str], seed: int, partial: bool,
                         log) -> None:
    """Name every detector this run trains with its reason (a partial retrain), and how many it keeps."""
    keeping = f"; keeping {len(kept)} as stored" if kept else ""
    if not partial and not any(n not in reasons or "refitted" in reasons[n] for n in names):
        log(f"training all {len(names)} detectors (seed {seed}){keeping}")
        return
    log(f"training {len(names)} detector{'s' if len(names) != 1 else ''} (seed {seed}){keeping}:")
    for n in names:
        log(f"  {n}: {reasons.get(n, 'named')}")
