"""Start the app safely: loopback by default; another address only with sign-in configured, or ``--no-auth``.

``run.sh`` runs ``python -m anodet.access.serving --check ARGS`` before it installs anything (a
refused start changes nothing), then ``python -m anodet.access.serving ARGS``, which starts
``streamlit run app.py`` with an explicit ``--server.address``. ARGS are this module's own
options and any of Streamlit's (``--server.port 8502``):

* ``--host HOST`` (or ``$ANODET_HOST``): the address to listen on. Default: Streamlit's
  ``--server.address`` / ``$STREAMLIT_SERVER_ADDRESS`` / ``[server] address`` in
  ``.streamlit/config.toml`` when given, else 127.0.0.1.
* ``--no-auth``: serve a non-loopback address without sign-in, every visitor an admin.

A non-loopback address without ``[auth]`` in Streamlit's secrets and without ``--no-auth`` is
refused with one sentence and exit status 2. Standard library only, so the check runs before
the virtual environment exists.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HOST_ENV = "ANODET_HOST"
NO_AUTH_ENV = "ANODET_NO_AUTH"
"""Set to 1 for the app by ``--no-auth``: the sign-in gate then serves a non-loopback address without sign-in."""
DEFAULT_HOST = "127.0.0.1"
EXIT_REFUSED = 2
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def is_loopback(host: str) -> bool:
    """Is ``host`` reachable from this machine only (127.0.0.0/8, ::1, localhost)?"""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} cannot be read as TOML ({exc})") from None


def _option(args: Sequence[str], name: str) -> list[str]:
    """Every value of a Streamlit command-line option (``--name VALUE`` or ``--name=VALUE``)."""
    out = []
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            out.append(args[i + 1])
        elif arg.startswith(name + "="):
            out.append(arg.split("=", 1)[1])
    return out


def _without(args: Sequence[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def config_files(name: str) -> list[Path]:
    """Streamlit's own search order for ``config.toml`` / ``secrets.toml``: global, then this folder's."""
    return [Path.home() / ".streamlit" / name, Path(".streamlit") / name]


def secrets_files(streamlit_args: Sequence[str]) -> list[Path]:
    """The secrets files Streamlit will read: ``--secrets.files`` / ``$STREAMLIT_SECRETS_FILES``, else the defaults."""
    given = _option(streamlit_args, "--secrets.files")
    if not given and os.environ.get("STREAMLIT_SECRETS_FILES"):
        given = os.environ["STREAMLIT_SECRETS_FILES"].split()
    return [Path(p) for p in given] if given else config_files("secrets.toml")


def auth_section(files: Sequence[Path]) -> dict[str, Any]:
    """The ``[auth]`` table as Streamlit merges it (later files win, key by key)."""
    merged: dict[str, Any] = {}
    for path in files:
        if path.is_dir():
            continue  # a Kubernetes-style secrets folder: Streamlit reads it; we cannot tell what it holds
        section = _read_toml(path).get("auth")
        if isinstance(section, dict):
            merged.update(section)
    return merged


def sign_in_problem(auth: dict[str, Any]) -> str | None:
    """Why ``[auth]`` does not configure sign-in (a clause), or None when it does."""
    if not auth:
        return "there is no [auth] section in .streamlit/secrets.toml"
    missing = [k for k in ("redirect_uri", "cookie_secret") if not auth.get(k)]
    if missing:
        return f"[auth] in .streamlit/secrets.toml has no {missing[0]}"
    providers = [auth] if auth.get("client_id") else [v for v in auth.values() if isinstance(v, dict)]
    if not providers:
        return "[auth] in .streamlit/secrets.toml names no provider (client_id, client_secret, server_metadata_url)"
    for section in providers:
        lacking = [k for k in PROVIDER_KEYS if not section.get(k)]
        if lacking:
            return f"[auth] in .streamlit/secrets.toml has a provider without {lacking[0]}"
    return None


def resolve_host(host: str | None, streamlit_args: Sequence[str]) -> str:
    """The address to listen on, from the most explicit setting down to 127.0.0.1."""
    for candidate in (host, os.environ.get(HOST_ENV), *_option(streamlit_args, "--server.address"),
                      os.environ.get("STREAMLIT_SERVER_ADDRESS")):
        if candidate:
            return candidate
    for path in reversed(config_files("config.toml")):
        value = _read_toml(path).get("server", {}).get("address")
        if isinstance(value, str) and value:
            return value
    return DEFAULT_HOST


def parse(argv: Sequence[str]) -> tuple[str | None, bool, bool, list[str]]:
    """(--host value, --no-auth, --check, Streamlit's own arguments)."""
    host, no_auth, check, rest = None, False, False, []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--no-auth":
            no_auth = True
        elif arg == "--check":
            check = True
        elif arg == "--host" and i + 1 < len(args):
            host, i = args[i + 1], i + 1
        elif arg.startswith("--host="):
            host = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return host, no_auth, check, rest


def decide(host: str, no_auth: bool, streamlit_args: Sequence[str]) -> tuple[bool, str | None]:
    """(may start, a sentence to print): refuses a non-loopback address without sign-in unless ``no_auth``."""
    try:
        problem = sign_in_problem(auth_section(secrets_files(streamlit_args)))
    except ValueError as exc:
        return False, f"anodet: not starting: {exc}."
    if problem is None:
        from anodet.access.policy import PolicyError, load_policy

        try:
            load_policy()
        except PolicyError as exc:
            return False, f"anodet: not starting: {exc}"
        return True, ("anodet: --no-auth changes nothing here: sign-in is configured, so every page asks for it."
                      if no_auth else None)
    if is_loopback(host):
        return True, None
    if no_auth:
        return True, (f"anodet: serving {host} WITHOUT sign-in (--no-auth): everyone who can reach it is an admin "
                      "and sees every dataset.")
    return False, (f"anodet: refusing to listen on {host} without sign-in ({problem}); configure [auth] as the "
                   "README's 'Serving a team' says, or add --no-auth to serve without sign-in.")


def main(argv: Sequence[str] | None = None) -> int:
    host_arg, no_auth, check, rest = parse(sys.argv[1:] if argv is None else argv)
    try:
        host = resolve_host(host_arg, rest)
    except ValueError as exc:
        print(f"anodet: not starting: {exc}.", file=sys.stderr)
        return EXIT_REFUSED
    ok, message = decide(host, no_auth, rest)
    if message and (not ok or not check):
        print(message, file=sys.stderr)
    if not ok:
        return EXIT_REFUSED
    if check:
        return 0
    env = dict(os.environ)
    if no_auth:
        env[NO_AUTH_ENV] = "1"
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", host,
               *_without(rest, "--server.address")]
    sys.stdout.flush()
    os.execve(sys.executable, command, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
