"""After the server comes back, the controller's backlog arrives within seconds: the pause
between attempts to reach an unreachable server is capped (it grew to 32 s before, and the
backlog waited 30.7 s). A real HTTP server is stopped and started again on its port."""
import time


from controller.service import LockerController
from tests.conftest import controller_settings, serve, wait_until


def test_the_pause_stays_short_for_an_unreachable_server():
    from controller.settings import Settings
    from controller.uplink import retry_cap
    assert retry_cap(Settings()) == 4.0
    assert retry_cap(Settings(), refused=True) == 60.0  # a refused token: asking soon helps nothing
    assert retry_cap(Settings(max_backoff=0.5)) == 0.5


class Server:
    def __init__(self, app, port=0):
        self.server, self.thread = serve(app, port)
        self.port = self.server.server_port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_the_backlog_arrives_within_five_seconds_of_the_servers_return(app, tmp_path, emulator, scanner):
    server = Server(app)
    settings = controller_settings(tmp_path, f"http://127.0.0.1:{server.port}", emulator, scanner,
                                   max_backoff=60.0, sync_interval=0.5, command_wait=1.0)
    controller = LockerController(settings).start()
    try:
        assert controller.synced.wait(10)
        assert controller.scanner_ready.wait(10)
        server.stop()
        wait_until(lambda: not controller.server_reachable.is_set(), timeout=10,
                   message="the controller noticed the server is gone")
        for n in range(5):
            scanner.scan(f"not-a-code-{n}")  # refused scans: events for the outbox
        wait_until(lambda: controller.store.outbox_length() >= 5, message="events in the outbox")
        time.sleep(9)  # the outage itself (the server is away; nothing to wait on)
        server = Server(app, server.port)
        back = time.monotonic()
        wait_until(lambda: controller.store.outbox_length() == 0, timeout=20, interval=0.05,
                   message="the backlog delivered")
        assert time.monotonic() - back <= 5.0
    finally:
        controller.stop()
        server.stop()
