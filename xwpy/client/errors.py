"""What the client raises: its own module, so that commands which never connect can catch it
without importing the HTTP client."""

from __future__ import annotations


class ClientError(Exception):
    def __init__(self, message: str, *, status: int = 0, code: str = "client", field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def __str__(self) -> str:
        where = f" (field: {self.field})" if self.field else ""
        if not self.status:  # a local or connection problem: the message says it all
            return f"{self.message}{where}"
        return f"HTTP {self.status} {self.code}: {self.message}{where}"
