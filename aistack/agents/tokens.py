"""The bearer token agents require and clients send.

An OllamaAgent whose card declares `authentication: {type: bearer}` accepts one shared token.
In a cluster it comes from a mounted Secret: `AISTACK_AGENT_TOKEN_FILE` names the file (it is
re-read when it changes, so rotating the Secret needs no restart). `AISTACK_AGENT_TOKEN` holds
it directly (handy in CI). On a laptop, `aistack agents serve` writes a random token to
`<data dir>/agents/token` (mode 0600) when neither is set; every local agent accepts it and
every local client (the Airflow operator, `aistack run`) sends it, so nothing needs configuring.

Tokens are compared in constant time and never logged; `describe()` names the source only.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from aistack.settings import data_dir

TOKEN_FILE_ENV = "AISTACK_AGENT_TOKEN_FILE"
TOKEN_ENV = "AISTACK_AGENT_TOKEN"


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


def ensure_local_token() -> Path:
    """Create the local token file once (0600); later runs reuse it."""
    path = local_token_path()
    if not path.is_file() or not path.read_text().strip():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
    return path


def client_token(env: Mapping[str, str] | None = None) -> str | None:
    """The token a client sends: the same sources, in the same order, as the agents use."""
    source = TokenSource.from_env(env)
    return source.current() if source else None
