"""Helpers shared by the fixture's own tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client

T = TypeVar("T")


def raw_request(api: client.ApiClient, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
    """A request through the real client's transport, for endpoints without typed methods.

    Returns the urllib3 response (``.status``, ``.headers``, ``.data``); error
    statuses raise ``ApiException`` as with typed calls.
    """
    return api.call_api(
        path,
        method,
        body=body,
        header_params={"Accept": "application/json", "Content-Type": content_type},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )


def eventually(check: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Poll until ``check`` returns a truthy value (returned) or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last result: {result!r})")
        time.sleep(interval)
