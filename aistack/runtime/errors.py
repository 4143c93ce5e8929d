"""Errors in Ollama's shape: an HTTP status and `{"error": "..."}`.

The official client turns that body into `ollama.ResponseError(error, status_code)`, so every
failure reaches aistack with Ollama's status code and a message that says what to do.
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.message}


def model_not_found(name: str) -> ApiError:
    """Ollama's exact wording, which clients match on."""
    return ApiError(404, f'model "{name}" not found, try pulling it first')
