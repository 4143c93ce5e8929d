"""The bearer tokens agents require and clients send, and whom each one identifies.

An OllamaAgent whose card declares `authentication: {type: bearer}` accepts

- the shared token: in a cluster from a mounted Secret, `AISTACK_AGENT_TOKEN_FILE` naming the
  file (it is re-read when it changes, so rotating the Secret needs no restart);
  `AISTACK_AGENT_TOKEN` holds it directly (handy in CI). On a laptop, `aistack agents serve`
  writes a random token to `<data dir>/agents/token` (mode 0600) when none is set; every local
  agent accepts it and every local client (the Airflow operator, `aistack run`) sends it, so
  nothing needs configuring. Every holder of the shared token is one caller, SHARED_IDENTITY;
- a token per namespace: `AISTACK_AGENT_TOKENS_DIR` names a directory with one file per
  namespace, named after it (one Secret per namespace, projected into one volume). Its holder
  is that namespace: the agent's tasks belong to the identity that created them (app.py), so
  one namespace never sees, follows, cancels or hooks into another's tasks.

A client calling for namespace N sends `<tokens dir>/N` when there is one, else the shared token
(`client_token`). Tokens are compared in constant time and never logged; `describe()` names the
source only.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from aistack import settings
from aistack.resources.types import DNS_LABEL_PATTERN
from aistack.settings import data_dir

log = logging.getLogger("aistack.agents.tokens")

TOKEN_FILE_ENV = settings.AGENT_TOKEN_FILE
TOKEN_ENV = settings.AGENT_TOKEN
TOKENS_DIR_ENV = settings.AGENT_TOKENS_DIR
SHARED_IDENTITY = "aistack:shared"  # a colon is never in a namespace name, so no namespace can be this identity


def local_token_path() -> Path:
    return data_dir() / "agents" / "token"


class TokenSource:
    """Where the token comes from: a file (re-read at most every `refresh` seconds when its
    modification time changes) or a fixed value."""

    def __init__(self, *, file: Path | str | None = None, value: str | None = None, refresh: float = 5.0):
        if (file is None) == (value is None):
            raise ValueError("give exactly one of file or value")
        self.file = Path(file) if file is not None else None
        self._value = value.strip() if value is not None else None
        self._refresh = refresh
        self._checked = 0.0
        self._mtime: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, include_local: bool = True) -> TokenSource | None:
        """The configured source: AISTACK_AGENT_TOKEN_FILE, AISTACK_AGENT_TOKEN, then the local file."""
        env = os.environ if env is None else env
        if env.get(TOKEN_FILE_ENV):
            return cls(file=env[TOKEN_FILE_ENV])
        if env.get(TOKEN_ENV):
            return cls(value=env[TOKEN_ENV])
        if include_local and local_token_path().is_file():
            return cls(file=local_token_path())
        return None

    def describe(self) -> str:
        return f"file {self.file}" if self.file is not None else f"${TOKEN_ENV}"

    def current(self) -> str | None:
        """The token now, or None when the file is missing or empty."""
        if self.file is None:
            return self._value or None
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= self._refresh or self._checked == 0.0:
                self._checked = now
                try:
                    mtime = self.file.stat().st_mtime
                    if mtime != self._mtime:
                        self._value = self.file.read_text().strip()
                        self._mtime = mtime
                except OSError:
                    self._value, self._mtime = None, None
            return self._value or None

    def matches(self, presented: str) -> bool:
        expected = self.current()
        if not expected:
            return False
        return hmac.compare_digest(presented.encode(), expected.encode())


def is_namespace(name: str) -> bool:
    """Whether `name` is a namespace name (an RFC 1123 label): only those name token files, which
    also keeps a templated namespace from naming a path outside the tokens directory."""
    return len(name) <= 63 and re.fullmatch(DNS_LABEL_PATTERN, name) is not None


class TokenDirectory:
    """One token file per namespace, named after it. Other entries (a projected volume's `..data`
    links) are ignored. The listing is re-read at most every `refresh` seconds, so a namespace
    added to or removed from the volume takes effect without a restart."""

    def __init__(self, path: Path | str, refresh: float = 5.0):
        self.path = Path(path)
        self._refresh = refresh
        self._listed = 0.0
        self._sources: dict[str, TokenSource] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TokenDirectory | None:
        env = os.environ if env is None else env
        return cls(env[TOKENS_DIR_ENV]) if env.get(TOKENS_DIR_ENV) else None

    def sources(self) -> dict[str, TokenSource]:
        """Namespace -> its token source, as the directory holds them now."""
        now = time.monotonic()
        with self._lock:
            if now - self._listed >= self._refresh or self._listed == 0.0:
                self._listed = now
                try:
                    names = sorted(entry.name for entry in self.path.iterdir() if is_namespace(entry.name) and entry.is_file())
                except OSError:
                    names = []
                self._sources = {name: self._sources.get(name) or TokenSource(file=self.path / name, refresh=self._refresh) for name in names}
            return dict(self._sources)

    def token(self, namespace: str) -> str | None:
        """The namespace's token, read now (what a client sends)."""
        if not is_namespace(namespace):
            return None
        try:
            return (self.path / namespace).read_text().strip() or None
        except OSError:
            return None


class AgentTokens:
    """The tokens an agent accepts, each standing for an identity: the shared token for
    SHARED_IDENTITY, each namespace's token for that namespace."""

    def __init__(self, shared: TokenSource | None = None, namespaces: TokenDirectory | None = None):
        self.shared = shared
        self.namespaces = namespaces

    def _candidates(self) -> dict[str, TokenSource]:
        candidates = dict(self.namespaces.sources()) if self.namespaces is not None else {}
        if self.shared is not None:
            candidates[SHARED_IDENTITY] = self.shared
        return candidates

    def configured(self) -> bool:
        """Whether any token can be accepted now."""
        return any(source.current() for source in self._candidates().values())

    def identify(self, presented: str) -> str | None:
        """The identity whose token was presented, or None. Every candidate is compared (in
        constant time), and a token configured for two identities identifies neither: tasks
        must have exactly one owner."""
        matches = [identity for identity, source in self._candidates().items() if source.matches(presented)]
        if len(matches) > 1:
            log.warning("one token is configured for several identities (%s): refused; give each its own token", ", ".join(matches))
        return matches[0] if len(matches) == 1 else None


def ensure_local_token() -> Path:
    """Create the local token file once (0600); later runs reuse it."""
    path = local_token_path()
    if not path.is_file() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path


def client_token(namespace: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The token a client calling for `namespace` sends: that namespace's file in
    AISTACK_AGENT_TOKENS_DIR when there is one, else the shared token (from the same sources,
    in the same order, as the agents use)."""
    directory = TokenDirectory.from_env(env)
    if namespace and directory is not None:
        token = directory.token(namespace)
        if token:
            return token
    source = TokenSource.from_env(env)
    return source.current() if source else None
