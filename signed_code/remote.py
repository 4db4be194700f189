"""Remote commands and presence over a message broker (MQTT), shared by the server and the
controllers: the topics, and each command signed with the server's signing key, so that
whoever can publish on the broker still cannot open a door. docs/MQTT.md has the whole."""
from __future__ import annotations

import base64
import binascii
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from signed_code import InvalidCode

# Signed bytes start with this, so a command's signature can never pass for anything else.
PURPOSE = b"locker-remote-command-v1\n"
MAX_MESSAGE = 2000


def topic(prefix: str, cabinet_id: int, kind: str) -> str:
    """``<prefix>/cabinet/<id>/commands`` (server to controller) or ``.../status`` (the
    controller's retained presence, its last will saying it is gone)."""
    if kind not in ("commands", "status"):
        raise ValueError(kind)
    return f"{prefix}/cabinet/{cabinet_id}/{kind}"


def encode_command(private_key: Ed25519PrivateKey, key_id: int, command: dict) -> bytes:
    body = json.dumps(command, sort_keys=True, separators=(",", ":"))
    signature = private_key.sign(PURPOSE + body.encode("utf-8"))
    return json.dumps({"command": body, "key_id": key_id,
                       "signature": base64.b64encode(signature).decode("ascii")}).encode("utf-8")


def decode_command(payload: bytes, public_keys: dict[int, Ed25519PublicKey]) -> dict:
    """The command in a message, after its signature is checked; InvalidCode otherwise."""
    if len(payload) > MAX_MESSAGE:
        raise InvalidCode("malformed", "message too large")
    try:
        message = json.loads(payload)
        body, key_id = message["command"], message["key_id"]
        signature = base64.b64decode(message["signature"], validate=True)
        if not isinstance(body, str) or not isinstance(key_id, int):
            raise TypeError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidCode("malformed", "not a command message") from None
    key = public_keys.get(key_id)
    if key is None:
        raise InvalidCode("unknown_key", f"signed with unknown key id {key_id}")
    try:
        key.verify(signature, PURPOSE + body.encode("utf-8"))
    except InvalidSignature:
        raise InvalidCode("bad_signature", "signature does not match") from None
    command = json.loads(body)
    if not isinstance(command, dict):
        raise InvalidCode("malformed", "not a command")
    return command


def presence(state: str, **detail) -> bytes:
    return json.dumps({"state": state, **detail}, sort_keys=True).encode("utf-8")


def read_presence(payload: bytes) -> str | None:
    """"online" or "offline" from a status message; None for anything else."""
    try:
        state = json.loads(payload[:MAX_MESSAGE]).get("state")
    except (ValueError, AttributeError):
        return None
    return state if state in ("online", "offline") else None


def broker_address(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` (port 1883 when left out) as host and port."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"not an mqtt:// address: {url!r}")
    return parts.hostname, parts.port or 1883
