"""Talking to the server: send the outbox in order, fetch what changed."""
from __future__ import annotations

import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)


class ServerError(Exception):
    pass


class Unauthorized(ServerError):
    pass


class ServerClient:
    def __init__(self, base_url: str, token: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()
        # One quick retry covers a kept-alive connection the server closed just now. Both
        # calls are safe to repeat: sync only reads, events carry idempotency keys.
        retry = Retry(total=1, connect=1, read=1, status=0, allowed_methods=None, backoff_factor=0)
        self._http.mount("http://", HTTPAdapter(max_retries=retry))
        self._http.mount("https://", HTTPAdapter(max_retries=retry))
        self._http.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs) -> dict:
        try:
            response = self._http.request(method, self.base_url + path, timeout=self.timeout,
                                          **kwargs)
        except requests.RequestException as error:
            raise ServerError(f"server unreachable: {error.__class__.__name__}") from None
        if response.status_code == 401:
            raise Unauthorized("the server refused the controller token")
        if response.status_code != 200:
            raise ServerError(f"server answered {response.status_code}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError:
            raise ServerError("server answered something that is not JSON") from None

    def sync(self, since: int) -> dict:
        return self._call("GET", "/api/v1/controller/sync", params={"since": since})

    def post_events(self, events: list[dict]) -> dict:
        return self._call("POST", "/api/v1/controller/events", json={"events": events})

    def close(self) -> None:
        self._http.close()
