"""A small web page for the emulated locker: doors, the last frames on the wire in hex,
and a field that feeds a code into the emulated scanner as a real scanner would."""
from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from hardware.emulator import BoardEmulator, ScannerEmulator

logger = logging.getLogger(__name__)
MAX_BODY = 8192

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Emulated locker</title>
<style>
 body { font: 1.1rem/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 52rem; padding: 1rem; }
 .doors { display: grid; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); gap: .6rem; }
 .door { border: 3px solid #2e7d32; border-radius: .4rem; padding: .5rem; }
 .door.open { border-color: #c62828; background: #fdecea; }
 .door b { font-size: 1.3rem; }
 button { font-size: 1rem; min-height: 2.6rem; margin-top: .3rem; }
 input[type=text] { width: 100%; font-size: 1rem; min-height: 2.6rem; box-sizing: border-box; }
 pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; font-size: .9rem; }
 :focus { outline: 3px solid #f5a623; outline-offset: 2px; }
</style></head><body>
<h1>Emulated locker</h1>
<p>Board family A, bus port <code id="port"></code>. This page stands in for the cabinet in the park.</p>
<h2>Scanner</h2>
<form id="scan">
 <label for="code">Code or reservation link (what the QR holds)</label>
 <input type="text" id="code" name="code" autocomplete="off" required>
 <button type="submit">Scan</button> <span id="scan-status" role="status"></span>
</form>
<h2>Doors</h2>
<div class="doors" id="doors" aria-live="polite"></div>
<h2>Last frames on the board line</h2>
<p><code>&gt;&gt;&gt;</code> from the controller, <code>&lt;&lt;&lt;</code> the board's reply.
The controller also asks for the state of all locks twice a second; the last such poll:</p>
<pre id="poll"></pre>
<pre id="frames"></pre>
<script>
async function post(path, body) {
  const r = await fetch(path, {method: "POST", body: new URLSearchParams(body)});
  return r.json();
}
function button(label, board, lock, action, kind) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.key = `${board}-${lock}-${kind}`;
  b.onclick = () => post(`/door`, {board, lock, action}).then(refresh);
  return b;
}
async function refresh() {
  const s = await (await fetch("/state.json")).json();
  document.getElementById("port").textContent = s.port;
  const doors = document.getElementById("doors");
  const focused = document.activeElement && document.activeElement.dataset.key;
  doors.replaceChildren(...s.doors.map(d => {
    const div = document.createElement("div");
    div.className = "door" + (d.closed ? "" : " open");
    div.innerHTML = `<b>Compartment ${d.lock}</b><br>board ${d.board}, lock ${d.lock}<br>` +
      `door <strong>${d.closed ? "closed" : "OPEN"}</strong><br>item ${d.item ? "inside" : "taken out"}<br>`;
    div.appendChild(button(d.closed ? "Force open" : "Close door", d.board, d.lock, d.closed ? "open" : "close", "door"));
    div.appendChild(document.createTextNode(" "));
    div.appendChild(button(d.item ? "Take item" : "Put item in", d.board, d.lock, d.item ? "take" : "put", "item"));
    return div;
  }));
  if (focused) { const again = doors.querySelector(`[data-key="${focused}"]`); if (again) again.focus(); }
  document.getElementById("frames").textContent = s.frames.join("\\n") || "(no other frames yet)";
  document.getElementById("poll").textContent = s.last_poll.join("\\n") || "(none yet)";
}
document.getElementById("scan").onsubmit = async (e) => {
  e.preventDefault();
  const field = document.getElementById("code");
  const r = await post("/scan", {code: field.value});
  document.getElementById("scan-status").textContent = r.message;
  field.value = "";
  refresh();
};
refresh(); setInterval(refresh, 700);
</script></body></html>"""


def make_handler(board: BoardEmulator, scanner: ScannerEmulator | None):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            logger.debug("emulator page: " + format, *args)

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: dict) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path == "/":
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/state.json":
                doors = [{"board": b.address, "lock": lock, "closed": closed, "item": b.items[lock]}
                         for b in board.boards.values() for lock, closed in sorted(b.doors.items())]
                frames = board.frames()
                # The steady state polls would push everything else off the list.
                is_poll = [f.data[0] == 0x80 and (len(f.data) == 7 or f.data[2] == 0) for f in frames]
                shown = [f"{f.time_text()} {'>>>' if f.direction == 'rx' else '<<<'} {f.hex()}"
                         for f, poll in zip(frames, is_poll) if not poll][-30:]
                polls = [f"{'>>>' if f.direction == 'rx' else '<<<'} {f.hex()}"
                         for f, poll in zip(frames, is_poll) if poll][-2:]
                self._json(200, {"port": board.port, "doors": doors, "frames": shown[::-1],
                                 "last_poll": polls})
            else:
                self._json(404, {"message": "no such page"})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "too much data"})
                return
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
            try:
                if self.path == "/scan" and scanner is not None:
                    code = form.get("code", "").strip()
                    if not code:
                        self._json(400, {"message": "Enter a code first."})
                        return
                    scanner.scan(code)
                    self._json(200, {"message": "Scanned."})
                elif self.path == "/door":
                    board_no, lock = int(form.get("board", 0)), int(form.get("lock", 0))
                    actions = {"close": board.close_door, "open": board.open_door,
                               "take": board.take_item, "put": board.put_item}
                    actions[form.get("action", "")](lock, board_no)
                    self._json(200, {"message": "ok"})
                else:
                    self._json(404, {"message": "no such action"})
            except (KeyError, ValueError) as error:
                self._json(400, {"message": f"not possible: {error}"})
    return Handler


class EmulatorPage:
    def __init__(self, board: BoardEmulator, scanner: ScannerEmulator | None,
                 host: str = "127.0.0.1", port: int = 5001) -> None:
        self.server = ThreadingHTTPServer((host, port), make_handler(board, scanner))
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="emulator-page",
                                        daemon=True)

    def start(self) -> "EmulatorPage":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
