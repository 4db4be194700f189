"""The controller's link to the message broker (MQTT 5, optional: ``mqtt_url``). Remote
commands arrive on the cabinet's topic the moment staff ask, instead of over a long poll
held open at the server; the controller's presence is a retained status with a last will,
so the server learns within a minute when the cabinet goes silent. Events keep the HTTP
outbox. While the broker cannot be reached, the HTTP long poll carries the commands again
(uplink.run_commands)."""
from __future__ import annotations

import hashlib
import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import signed_code
from signed_code import remote

logger = logging.getLogger(__name__)
# How long the broker keeps commands for this controller while it is away (each command
# also expires on its own, with its message expiry).
SESSION_SECONDS = 3600


class BrokerLink:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.settings = controller.settings
        self.connected = threading.Event()
        # The first connection came to an end, subscribed or failed: until then the
        # controller does not open a long poll it would not need.
        self.settled = threading.Event()
        self.refused = 0  # messages that were not a valid command for this cabinet
        self.received = 0  # commands carried out that came over the broker
        self._client: mqtt.Client | None = None
        self._status_topic = ""
        self._seq = 0  # this connection's presence number

    def run(self, stop: threading.Event) -> None:
        """Connect once the first sync told which cabinet this is; keep reconnecting in the
        background until stopped."""
        while not self.controller.synced.wait(0.5):
            if stop.is_set():
                return
        cabinet_id = self.controller.store.cabinet_id()
        self._start(cabinet_id)
        stop.wait()
        self._stop()

    def _start(self, cabinet_id: int) -> None:
        settings = self.settings
        host, port = remote.broker_address(settings.mqtt_url)
        # Stable across restarts (the broker keeps the session), different per controller.
        who = hashlib.sha256("\n".join((settings.token, settings.server_url,
                                         settings.mqtt_topic_prefix)).encode("utf-8")).hexdigest()[:12]
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"locker-cabinet-{cabinet_id}-{who}",
                             protocol=mqtt.MQTTv5)
        if settings.mqtt_username:
            client.username_pw_set(settings.mqtt_username, settings.mqtt_password or None)
        prefix = settings.mqtt_topic_prefix
        self._status_topic = remote.topic(prefix, cabinet_id, "status")
        commands_topic = remote.topic(prefix, cabinet_id, "commands")
        self._next_connection(client)

        def on_connect(client, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                logger.warning("broker refused the connection: %s", reason_code)
                self.settled.set()
                return
            client.subscribe(commands_topic, qos=1)
            client.publish(self._status_topic, self._presence("online"), qos=1, retain=True)

        def on_subscribe(client, userdata, mid, reason_codes, properties):
            # Connected counts from the broker's acknowledgement of the subscription: a
            # command published before it would not reach this controller.
            if any(code.is_failure for code in reason_codes):
                logger.warning("broker refused the subscription: %s", reason_codes)
                self.settled.set()
                return
            self.connected.set()
            self.settled.set()
            logger.info("broker connected: %s:%s, commands on %s", host, port, commands_topic)

        def on_disconnect(client, userdata, flags, reason_code, properties):
            if self.connected.is_set():
                logger.warning("broker connection lost (%s); commands over HTTP meanwhile",
                               reason_code)
            self.connected.clear()
            self._next_connection(client)  # the next connect carries the next seq

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_subscribe = on_subscribe
        client.on_connect_fail = lambda client, userdata: self.settled.set()
        client.on_message = lambda client, userdata, message: self.receive(message.payload)
        client.reconnect_delay_set(1, max(1, int(settings.server_retry_max)))
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_SECONDS
        client.connect_async(host, port, keepalive=int(settings.mqtt_keepalive), clean_start=False,
                             properties=properties)
        client.loop_start()
        self._client = client

    def _next_connection(self, client: mqtt.Client) -> None:
        """A new presence number for the coming connection (kept in the local store, so it
        rises across restarts too), and the last will that goes with it."""
        self._seq = int(self.controller.store.setting("presence_seq", "0")) + 1
        self.controller.store.set_setting("presence_seq", str(self._seq))
        client.will_set(self._status_topic, self._presence("offline"), qos=1, retain=True)

    def _presence(self, state: str) -> bytes:
        return remote.presence(remote.presence_key(self.settings.token), state, self._seq)

    def receive(self, payload: bytes) -> str:
        """A message on the commands topic: carried out only when the server signed it for
        this cabinet (the broker is not trusted to open doors)."""
        keys = {kid: signed_code.public_key_from_text(text)
                for kid, text in self.controller.store.public_keys().items()}
        try:
            command = remote.decode_command(payload, keys)
        except signed_code.InvalidCode as error:
            self.refused += 1
            logger.warning("broker message refused: %s", error)
            return error.reason
        if command.get("cabinet") != self.controller.store.cabinet_id():
            self.refused += 1
            logger.warning("broker command for another cabinet refused: %r", command.get("cabinet"))
            return "other_cabinet"
        outcome = self.controller.handle_command(command)
        if outcome == "accepted":
            self.received += 1
        return outcome

    def _stop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self.connected.is_set():
            # A deliberate stop says so at once; a crash or a cut cable leaves it to the will.
            client.publish(self._status_topic, self._presence("offline"), qos=1,
                           retain=True).wait_for_publish(2)
        client.disconnect()
        client.loop_stop()
        self.connected.clear()
