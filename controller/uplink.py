"""Talking to the server: send the outbox in order, fetch what changed, take remote
commands by long poll. A slow or absent server never holds up the board line."""
from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from datetime import datetime
from urllib.parse import urlencode, urlsplit

logger = logging.getLogger(__name__)
# With a broker configured, how long the controller gives its first connection before it
# opens a long poll instead (one that would hold a place at the server for nothing).
BROKER_GRACE_SECONDS = 5.0


class ServerError(Exception):
    pass


def retry_cap(settings, refused: bool = False) -> float:
    """The longest pause before asking the server again: short (``server_retry_max``, 4 s)
    while it is unreachable, so a server that comes back gets the backlog within seconds
    (it waited out a 32 s back-off before); ``max_backoff`` when it refused our token."""
    return settings.max_backoff if refused else min(settings.server_retry_max, settings.max_backoff)


class Unauthorized(ServerError):
    pass


class ServerClient:
    """JSON over HTTP(S) with the standard library: a kept-alive connection for the uplink
    and one for the long poll. (requests would cost the controller about 17 MB more
    memory; the controller must stay small.)"""

    def __init__(self, base_url: str, token: str, timeout: float = 5.0) -> None:
        url = urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"server_url must be http(s)://host[:port], not {base_url!r}")
        self._connection_class = (http.client.HTTPSConnection if url.scheme == "https"
                                  else http.client.HTTPConnection)
        self._host, self._port, self._prefix = url.hostname, url.port, url.path
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._connections: dict[str, http.client.HTTPConnection] = {}

    def _connection(self, name: str, timeout: float) -> http.client.HTTPConnection:
        connection = self._connections.get(name)
        if connection is None:
            connection = self._connection_class(self._host, self._port, timeout=timeout)
            self._connections[name] = connection
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        return connection

    def _call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None,
              channel: str = "main", timeout: float | None = None) -> dict:
        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            connection = self._connection(channel, timeout or self.timeout)
            try:
                connection.request(method, target, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._connections.pop(channel, None)
                # A kept-alive connection the server closed just now: one fresh try. Every
                # call is safe to repeat (reads, or events with idempotency keys).
                stale = isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError,
                                           BrokenPipeError, http.client.BadStatusLine))
                if attempt == 1 and stale:
                    continue
                raise ServerError(f"server unreachable: {error.__class__.__name__}") from None
        if response.status == 401:
            raise Unauthorized("the server refused the controller token")
        if response.status != 200:
            raise ServerError(f"server answered {response.status}: {payload[:200]!r}")
        try:
            return json.loads(payload)
        except ValueError:
            raise ServerError("server answered something that is not JSON") from None

    def sync(self, since: int) -> dict:
        return self._call("GET", "/api/v1/controller/sync", params={"since": since})

    def post_events(self, events: list[dict]) -> dict:
        return self._call("POST", "/api/v1/controller/events", body={"events": events})

    def post_status(self, status: dict) -> dict:
        return self._call("POST", "/api/v1/controller/status", body={"status": status})

    def commands(self, after: int, wait: float) -> dict:
        return self._call("GET", "/api/v1/controller/commands", params={"after": after, "wait": wait},
                          channel="poll", timeout=wait + self.timeout)

    def close(self) -> None:
        for connection in list(self._connections.values()):
            connection.close()
        self._connections.clear()


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
                logger.log(level, "%s; events are kept, retrying in %.1f s", error, backoff)
                self._unreachable()
                stop.wait(backoff)
                backoff = min(backoff * 2, retry_cap(self.settings, isinstance(error, Unauthorized)))

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
        self.client.post_status(self.controller.status_report())

    # Remote commands -----------------------------------------------------------------------------
    def run_commands(self, stop) -> None:
        """Over the broker when it is connected (a short look over HTTP now and then
        catches anything missed); else the long poll."""
        backoff = 1.0
        grace_until = None
        while not stop.is_set():
            if not self.controller.synced.wait(0.5):
                continue
            broker = self.controller.broker
            if grace_until is None:  # the broker link starts connecting after the first sync
                grace_until = time.monotonic() + BROKER_GRACE_SECONDS
            if (broker is not None and not broker.settled.is_set()
                    and time.monotonic() < grace_until):
                broker.settled.wait(0.5)  # the broker first, the long poll if it fails
                continue
            over_broker = broker is not None and broker.connected.is_set()
            if over_broker:
                deadline = time.monotonic() + self.settings.command_catchup
                while (not stop.is_set() and broker.connected.is_set()
                       and time.monotonic() < deadline):
                    stop.wait(0.5)
                if stop.is_set():
                    return
            try:
                answer = self.client.commands(self.store.last_command_seq(),
                                              0.0 if over_broker else self.settings.command_wait)
            except ServerError as error:
                logger.debug("commands: %s", error)
                stop.wait(backoff)
                backoff = min(backoff * 2, retry_cap(self.settings, isinstance(error, Unauthorized)))
                continue
            backoff = 1.0
            for command in answer.get("commands", []):
                if stop.is_set():
                    return
                self.controller.handle_command(command)
            if not over_broker and answer.get("retry_after"):
                # The server holds as many long polls as it may: asked again a little
                # later instead of at once, again and again.
                stop.wait(min(float(answer["retry_after"]), 60.0))

    @staticmethod
    def parse_time(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
