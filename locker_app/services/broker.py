"""The server's side of the message broker (MQTT 5, optional: LOCKER_MQTT_URL). A remote
command is published to its cabinet's topic the moment staff ask (QoS 1, signed, with a
message expiry matching its own); the scheduler reads the controllers' retained presence
and raises the "cabinet not heard from" alert when the broker says one is gone. Without a
broker nothing here runs: the controllers' long poll carries the commands."""
from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from flask import Flask, current_app
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import select

from locker_app.models import Controller, RemoteCommand, utcnow
from locker_app.services import signing
from locker_app.services.commands import command_document
from signed_code import remote

logger = logging.getLogger(__name__)
_publisher: tuple[str, mqtt.Client] | None = None
_publisher_lock = threading.Lock()
_STATUS_TOPIC = re.compile(r".*/cabinet/(\d{1,9})/status")


def _new_client(config, purpose: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"locker-{purpose}-{os.getpid()}-{secrets.token_hex(4)}",
                         protocol=mqtt.MQTTv5)
    if config.get("MQTT_USERNAME"):
        client.username_pw_set(config["MQTT_USERNAME"], config.get("MQTT_PASSWORD") or None)
    client.reconnect_delay_set(1, 10)
    return client


def _publisher_client(config) -> mqtt.Client:
    """One connection per process, made on first use (after gunicorn forked), kept up in
    the background; messages published while it connects wait in its queue."""
    global _publisher
    url = config["MQTT_URL"]
    with _publisher_lock:
        if _publisher is None or _publisher[0] != url:
            if _publisher is not None:
                _publisher[1].loop_stop()
            client = _new_client(config, "web")
            host, port = remote.broker_address(url)
            client.connect_async(host, port, keepalive=60)
            client.loop_start()
            _publisher = (url, client)
        return _publisher[1]


def publish_command(command: RemoteCommand, now: datetime | None = None) -> bool:
    """Publish a command to its cabinet; False when no broker is configured. It stays in
    the database either way, so the HTTP path still delivers it."""
    config = current_app.config
    if not config.get("MQTT_URL"):
        return False
    now = now or utcnow()
    keys = signing.load_private_keys()
    key_id = max(keys)
    properties = Properties(PacketTypes.PUBLISH)
    properties.MessageExpiryInterval = max(1, int((command.expires_at - now).total_seconds()))
    info = _publisher_client(config).publish(
        remote.topic(config["MQTT_TOPIC_PREFIX"], command.cabinet_id, "commands"),
        remote.encode_command(keys[key_id], key_id, command_document(command)),
        qos=1, properties=properties)
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        logger.warning("command %s not published to the broker (%s); the long poll has it",
                       command.uuid, info.rc)
        return False
    return True


class PresenceListener:
    """Run by the scheduler: the controllers' retained status; "offline" (their last will,
    or a deliberate stop) raises the silent-cabinet alert at once, "online" clears it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.connected = threading.Event()
        self.client: mqtt.Client | None = None
        self.handled = 0  # status messages looked at (believed or not)

    def start(self) -> "PresenceListener":
        config = self.app.config
        client = _new_client(config, "presence")
        pattern = f"{config['MQTT_TOPIC_PREFIX']}/cabinet/+/status"

        def on_connect(client, userdata, flags, reason_code, properties):
            if not reason_code.is_failure:
                client.subscribe(pattern, qos=1)
                self.connected.set()

        client.on_connect = on_connect
        client.on_disconnect = lambda *args: self.connected.clear()
        client.on_message = lambda client, userdata, message: self.handled_one(
            message.topic, message.payload)
        host, port = remote.broker_address(config["MQTT_URL"])
        client.connect_async(host, port, keepalive=60)
        client.loop_start()
        self.client = client
        return self

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def handled_one(self, topic: str, payload: bytes) -> None:
        try:
            self.handle(topic, payload)
        finally:
            self.handled += 1

    def handle(self, topic: str, payload: bytes) -> None:
        """A status message, believed only when one of the cabinet's controllers signed it
        (its key: the token's hash the server keeps) and it is newer than the last one
        believed: whoever can publish on the broker cannot hide a silent cabinet."""
        match = _STATUS_TOPIC.fullmatch(topic)
        if match is None or not payload:
            return
        from locker_app.extensions import db
        from locker_app.services import alerts
        with self.app.app_context():
            try:
                now = utcnow()
                controllers = db.session.scalars(select(Controller).where(
                    Controller.cabinet_id == int(match.group(1)),
                    Controller.retired_at.is_(None))).all()
                read = remote.read_presence(payload, {
                    c.id: c.token_hash.encode("ascii") for c in controllers})
                if read is None:
                    logger.warning("status message on %s not signed by its cabinet: ignored",
                                   topic)
                    return
                owner, state, seq = read
                controller = next(c for c in controllers if c.id == owner)
                if not _newer(controller, state, seq):
                    logger.warning("old status message on %s (connection %d, last %d): "
                                   "ignored", topic, seq, controller.presence_seq)
                    return
                controller.presence_seq = seq
                if state == "online":
                    controller.broker_offline_at = None
                    controller.last_seen_at = now
                else:
                    controller.broker_offline_at = now
                db.session.commit()
                silent_after = self.app.config["CABINET_SILENT_MINUTES"]
                alerts.raise_silent_cabinets(db.session, now, timedelta(minutes=silent_after),
                                             only=[controller.id])
            except Exception:  # a message boundary: log it, the next message tries again
                logger.exception("presence message on %s not recorded", topic)
                db.session.rollback()
            finally:
                db.session.remove()


def _newer(controller: Controller, state: str, seq: int) -> bool:
    """A later connection's message, or the end ("offline") of the one believed last."""
    if seq != controller.presence_seq:
        return seq > controller.presence_seq
    return state == "offline" and controller.broker_offline_at is None
