"""Fixtures of the A2A tests: a private AISTACK_HOME and no token or webhook settings from the
environment, so every test states the ones it needs."""

from __future__ import annotations

import pytest

from aistack.agents.tokens import TOKEN_ENV, TOKEN_FILE_ENV, TOKENS_DIR_ENV
from aistack.agents.webhooks import ALLOW_ENV


@pytest.fixture(autouse=True)
def a2a_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AISTACK_HOME", str(tmp_path / "aistack-home"))
    for name in (TOKEN_ENV, TOKEN_FILE_ENV, TOKENS_DIR_ENV, ALLOW_ENV, "AISTACK_AGENT_PUBLIC_URL", "AISTACK_AGENT_MAX_BODY", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path
