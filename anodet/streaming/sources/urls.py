"""Broker addresses: ``redis://``, ``rediss://`` (TLS) and ``kafka://`` URLs, parsed in one place.

``redis://[USER:PASSWORD@]HOST[:PORT]/STREAM`` names a Redis Stream (or an alert stream);
``rediss://`` is the same over TLS; ``kafka://HOST[:PORT]/TOPIC`` names a Kafka topic. A password
may instead come from ``$ANODET_REDIS_PASSWORD`` (and a user name from ``$ANODET_REDIS_USERNAME``),
which keeps it out of the process list. Secrets never appear in what is printed or logged: a
URL is shown with its password as ``***``, and an address that cannot be parsed is quoted with
everything before its ``@`` masked.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from anodet.streaming.sources.base import SourceError

SCHEMES = ("redis", "rediss", "kafka")
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "kafka": 9092}
PASSWORD_ENV = "ANODET_REDIS_PASSWORD"
USERNAME_ENV = "ANODET_REDIS_USERNAME"
CA_CERT_ENV = "ANODET_REDIS_CA_CERT"
"""A PEM file of the certificate authorities a ``rediss://`` server's certificate is checked
against (default: the system's)."""

_HOST_PORT = re.compile(r"^(\[[^\]]+\]|[^:/\[\]@]+)(?::(\d{1,5}))?$")


@dataclass(frozen=True)
class BrokerURL:
    """A Redis stream or a Kafka topic, with the credentials to reach it (never shown)."""

    scheme: str
    host: str
    port: int
    name: str
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    @property
    def is_redis(self) -> bool:
        return self.scheme in ("redis", "rediss")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        return f"{self.scheme}://{auth}{host}:{self.port}/{self.name}"

    def with_name(self, name: str) -> BrokerURL:
        """The same server and credentials, another stream."""
        return BrokerURL(self.scheme, self.host, self.port, name, self.username, self.password)


def scheme_of(spec: str | None) -> str | None:
    """``redis``, ``rediss`` or ``kafka`` when ``spec`` is a broker address, else None."""
    if not spec or "://" not in spec:
        return None
    scheme = spec.split("://", 1)[0].strip().lower()
    return scheme if scheme in SCHEMES else None


def is_broker_url(spec: str | None) -> bool:
    """The one test of whether an input or destination names a broker rather than a file."""
    return scheme_of(spec) is not None


def is_redis_url(spec: str | None) -> bool:
    return scheme_of(spec) in ("redis", "rediss")


def redact(spec: str) -> str:
    """``spec`` fit to print: any user and password before an ``@`` masked."""
    head, sep, rest = spec.partition("://")
    if not sep:
        return spec
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{head}{sep}{authority}{slash}{path}"


def parse_broker_url(spec: str) -> BrokerURL:
    """A :class:`BrokerURL`, or a SourceError saying how to write one (the address quoted redacted)."""
    text = spec.strip()
    scheme = scheme_of(text) or "redis"
    what = "TOPIC" if scheme == "kafka" else "STREAM"
    example = f"{scheme}://127.0.0.1:{DEFAULT_PORTS[scheme]}/flows"

    def bad(why: str = "") -> SourceError:
        return SourceError(f"{redact(text)!r} is not a broker address{why}; write it as {scheme}://HOST:PORT/{what}, "
                           f"for example {example}.")

    if scheme_of(text) is None:
        raise bad()
    authority, _, name = text.split("://", 1)[1].partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    match = _HOST_PORT.match(hostport)
    if not match or not name or "/" in name:
        raise bad()
    host, port_text = match.groups()
    port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise bad(f" (port {port} is out of range)")
    username = password = None
    if at:
        if scheme == "kafka":
            raise SourceError(f"{redact(text)!r}: kafka:// addresses take no user or password; anodet reads Kafka "
                              "without authentication.")
        user_text, colon, password_text = userinfo.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
    if scheme != "kafka" and password is None:
        password = os.environ.get(PASSWORD_ENV) or None
        username = username or os.environ.get(USERNAME_ENV) or None
    return BrokerURL(scheme, host.strip("[]"), port, unquote(name), username, password)
