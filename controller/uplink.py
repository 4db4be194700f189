"""Talking to the server: send the outbox in order, fetch what changed, take remote
commands by long poll. A slow or absent server never holds up the board line."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

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
        self._http.headers["Authorization"] = f"Bearer {token}"
        # One quick retry covers a kept-alive connection the server closed just now. Every
        # call is safe to repeat: sync and commands only read, events carry idempotency keys.
        retry = Retry(total=1, connect=1, read=1, status=0, allowed_methods=None, backoff_factor=0)
        self._http.mount("http://", HTTPAdapter(max_retries=retry))
        self._http.mount("https://", HTTPAdapter(max_retries=retry))
        # Long polls get a connection of their own, so they never wait behind each other.
        self._poll_http = requests.Session()
        self._poll_http.headers.update(self._http.headers)

    def _call(self, method: str, path: str, *, session=None, timeout=None, **kwargs) -> dict:
        try:
            response = (session or self._http).request(
                method, self.base_url + path, timeout=timeout or self.timeout, **kwargs)
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

    def commands(self, after: int, wait: float) -> dict:
        return self._call("GET", "/api/v1/controller/commands", session=self._poll_http,
                          params={"after": after, "wait": wait}, timeout=wait + self.timeout)

    def close(self) -> None:
        self._http.close()
        self._poll_http.close()


class Uplink:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.settings = controller.settings
        self.store = controller.store
        self.client = controller.client
        self._wake = threading.Event()
        self._sync_requested = threading.Event()
        self.unreachable_since: float | None = None
        self._unreachable_reported = False

    def wake(self) -> None:
        self._wake.set()

    def request_sync(self) -> None:
        self._sync_requested.set()
        self._wake.set()

    # Outbox and sync --------------------------------------------------------------------------
    def run(self, stop) -> None:
        backoff = first_backoff = min(1.0, self.settings.max_backoff)
        next_sync = 0.0
        while not stop.is_set():
            try:
                self.send_outbox(stop)
                if time.monotonic() >= next_sync or self._sync_requested.is_set():
                    self._sync_requested.clear()
                    self.sync(stop)
                    next_sync = time.monotonic() + self.settings.sync_interval
                self._reachable()
                backoff = first_backoff
                self._wake.wait(max(0.0, next_sync - time.monotonic()))
                self._wake.clear()
            except ServerError as error:
                level = logging.ERROR if isinstance(error, Unauthorized) else logging.WARNING
                logger.log(level, "%s; events are kept, retrying in %.0f s", error, backoff)
                self._unreachable()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)

    def _reachable(self) -> None:
        self.controller.server_reachable.set()
        self.unreachable_since = None
        if self._unreachable_reported:
            self._unreachable_reported = False
            self.controller.event("server_back")

    def _unreachable(self) -> None:
        self.controller.server_reachable.clear()
        now = self.controller.clock().timestamp()
        if self.unreachable_since is None:
            self.unreachable_since = now
        elif (not self._unreachable_reported
              and now - self.unreachable_since >= self.settings.server_unreachable_alert):
            self._unreachable_reported = True
            # Stored now, delivered when the server is back: staff see how long it lasted.
            self.controller.event("server_unreachable",
                                  detail={"seconds": round(now - self.unreachable_since)})

    def send_outbox(self, stop) -> None:
        while not stop.is_set():
            batch = self.store.unsent_events(100)
            if not batch:
                return
            answer = self.client.post_events([event.as_json() for event in batch])
            acknowledged = set(answer.get("stored", [])) | set(answer.get("duplicates", []))
            self.store.mark_sent([e.idempotency_key for e in batch if e.idempotency_key in acknowledged],
                                 self.controller.clock())
            if len(acknowledged) < len(batch):
                raise ServerError("server did not acknowledge every event")

    def sync(self, stop) -> None:
        more = True
        while more and not stop.is_set():
            document = self.client.sync(self.store.sync_cursor())
            self.store.apply_sync(document)
            more = bool(document.get("more"))
        self.controller.synced.set()

    # Remote commands -----------------------------------------------------------------------------
    def run_commands(self, stop) -> None:
        backoff = 1.0
        while not stop.is_set():
            if not self.controller.synced.wait(0.5):
                continue
            try:
                answer = self.client.commands(self.store.last_command_seq(), self.settings.command_wait)
            except ServerError as error:
                logger.debug("commands: %s", error)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
                continue
            backoff = 1.0
            for command in answer.get("commands", []):
                if stop.is_set():
                    return
                self.controller.handle_command(command)

    @staticmethod
    def parse_time(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
