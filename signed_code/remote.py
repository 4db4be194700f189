"""Remote commands and presence over a message broker (MQTT), shared by the server and the
controllers: the topics, each command signed with the server's signing key, so that
whoever can publish on the broker still cannot open a door, and each presence message
signed with its controller's key, so that nobody else can hide a silent cabinet.
docs/MQTT.md has the whole."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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


# A presence message's MAC starts with this, so it can never pass for anything else.
PRESENCE_PURPOSE = b"locker-presence-v1\n"


def presence_key(token: str) -> bytes:
    """The key a controller signs its presence with: its token's SHA-256, which is what the
    server stores of the token (so the server can check it, and the token stays secret)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest().encode("ascii")


def presence(key: bytes, state: str, seq: int) -> bytes:
    """A signed status message. ``seq`` rises with every connection of the controller, so
    an old "online" replayed by a stranger on the broker counts for nothing."""
    body = json.dumps({"state": state, "seq": seq}, sort_keys=True, separators=(",", ":"))
    mac = hmac.new(key, PRESENCE_PURPOSE + body.encode("utf-8"), hashlib.sha256).hexdigest()
    return json.dumps({"presence": body, "mac": mac}).encode("utf-8")


def read_presence(payload: bytes, keys: dict[int, bytes]) -> tuple[int, str, int] | None:
    """(whose key signed it, "online" or "offline", its seq) from a status message, when one
    of ``keys`` (id: key) signed it; None for anything else: unsigned, forged, malformed."""
    try:
        message = json.loads(payload[:MAX_MESSAGE])
        body, mac = message["presence"], message["mac"]
        if not isinstance(body, str) or not isinstance(mac, str):
            return None
        fields = json.loads(body)
        state, seq = fields["state"], fields["seq"]
    except (ValueError, KeyError, TypeError):
        return None
    if state not in ("online", "offline") or not isinstance(seq, int) or isinstance(seq, bool):
        return None
    for owner, key in keys.items():
        expected = hmac.new(key, PRESENCE_PURPOSE + body.encode("utf-8"), hashlib.sha256)
        if hmac.compare_digest(expected.hexdigest(), mac):
            return owner, state, seq
    return None


def broker_address(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` (port 1883 when left out) as host and port."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise ValueError(f"not an mqtt:// address: {url!r}")
    return parts.hostname, parts.port or 1883
