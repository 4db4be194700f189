"""A small web page for the emulated locker, in German: the cabinet's display and its tones,
fields that feed a code into the emulated scanner and keypad as real ones would, the doors,
and the last frames on the wire in hex."""
from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from hardware.emulator import BoardEmulator, DisplayEmulator, ScannerEmulator
from hardware.http_thread import ServerThread

logger = logging.getLogger(__name__)
MAX_BODY = 8192

PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Emulierter Schrank</title>
<style>
 body { font: 1.1rem/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem;
        color: #0b0c0c; background: #fff; }
 .front { display: grid; grid-template-columns: minmax(15rem, 22rem) 1fr; gap: 1rem; align-items: start; }
 @media (max-width: 40rem) { .front { grid-template-columns: 1fr; } }
 .lcd { background: #12301a; color: #d8ffd0; font: 1.15rem/1.5 ui-monospace, monospace; padding: .7rem;
        border-radius: .4rem; min-height: 6.5rem; white-space: pre-wrap; overflow-wrap: anywhere; }
 .doors { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); gap: .6rem; }
 .door { border: 3px solid #1d6b30; border-radius: .4rem; padding: .5rem; }
 .door.open { border-color: #b3261e; background: #fdecea; }
 .door b { font-size: 1.3rem; }
 button { font-size: 1rem; min-height: 2.75rem; min-width: 2.75rem; margin-top: .3rem; }
 input[type=text] { width: 100%; font-size: 1rem; min-height: 2.75rem; box-sizing: border-box; }
 pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; font-size: .9rem; }
 a { color: #1d4ed8; }
 :focus-visible { outline: 3px solid #0b0c0c; box-shadow: 0 0 0 6px #ffdd00; outline-offset: 0; }
</style></head><body>
<h1>Emulierter Schrank</h1>
<p>Diese Seite steht für den Schrank im Park: Anzeige, Scanner, Tastenfeld und Fächer.
Platinenfamilie A, Bus-Anschluss <code id="port"></code>.<span id="screen-link"></span></p>
<div class="front">
<section aria-labelledby="display-heading">
 <h2 id="display-heading">Anzeige am Schrank</h2>
 <div class="lcd" id="display" role="status" aria-live="polite">(keine Anzeige angeschlossen)</div>
 <p id="tone">Ton: noch keiner</p>
 <form id="scan">
  <label for="code">Scanner: Inhalt des QR-Codes (die Adresse der Reservierungsseite)</label>
  <input type="text" id="code" name="code" autocomplete="off" required>
  <button type="submit">Scannen</button> <span id="scan-status" role="status"></span>
 </form>
 <form id="keys">
  <label for="digits">Tastenfeld: 8-stellige Nummer</label>
  <input type="text" id="digits" name="digits" inputmode="numeric" autocomplete="off" required>
  <button type="submit">Bestätigen</button>
  <button type="button" id="defect-key">Taste D: Defekt melden</button>
  <span id="keys-status" role="status"></span>
 </form>
</section>
<section aria-labelledby="doors-heading">
 <h2 id="doors-heading">Fächer</h2>
 <div class="doors" id="doors"></div>
</section>
</div>
<h2>Letzte Rahmen auf der Platinenleitung</h2>
<p><code>&gt;&gt;&gt;</code> vom Steuerrechner, <code>&lt;&lt;&lt;</code> die Antwort der Platine.
Der Steuerrechner fragt außerdem zweimal pro Sekunde alle Schlösser ab; die letzte Abfrage:</p>
<pre id="poll" tabindex="0" aria-label="Letzte Abfrage"></pre>
<pre id="frames" tabindex="0" aria-label="Letzte Rahmen"></pre>
<script>
async function post(path, body) {
  const r = await fetch(path, {method: "POST", body: new URLSearchParams(body)});
  return r.json();
}
// The doors' cards are made once and then only their words change: rebuilt on every
// refresh (twice a second), a button could be replaced between press and release and the
// click was lost.
const cards = new Map();
function doorCard(d) {
  const div = document.createElement("div"), text = document.createElement("div");
  const door = document.createElement("button"), item = document.createElement("button");
  door.dataset.key = `${d.board}-${d.lock}-door`;
  item.dataset.key = `${d.board}-${d.lock}-item`;
  for (const b of [door, item]) {
    b.onclick = () => post("/door", {board: d.board, lock: d.lock, action: b.dataset.action}).then(refresh);
  }
  div.append(text, door, " ", item);
  document.getElementById("doors").appendChild(div);
  return {div, text, door, item};
}
function say(element, label, action) {
  if (element.textContent !== label) element.textContent = label;
  element.dataset.action = action;
}
function showDoor(d) {
  const key = `${d.board}-${d.lock}`;
  if (!cards.has(key)) cards.set(key, doorCard(d));
  const card = cards.get(key);
  card.div.className = "door" + (d.closed ? "" : " open");
  const html = `<b>Fach ${d.lock}</b><br>Platine ${d.board}, Schloss ${d.lock}<br>` +
    `Tür <strong>${d.closed ? "zu" : "OFFEN"}</strong><br>${d.item ? "Gegenstand drin" : "Fach leer"}`;
  if (card.shown !== html) { card.text.innerHTML = html; card.shown = html; }
  say(card.door, d.closed ? "Aufbrechen" : "Tür schließen", d.closed ? "open" : "close");
  say(card.item, d.item ? "Herausnehmen" : "Hineinstellen", d.item ? "take" : "put");
}
window.refreshes = 0;  // how often the page asked for the state (the tests wait on it)
const TONES = {yes: "Ja-Ton (zwei helle Töne)", no: "Nein-Ton (ein tiefer Ton)"};
let shownText = null;
async function refresh() {
  const s = await (await fetch("/state.json")).json();
  document.getElementById("port").textContent = s.port;
  document.getElementById("keys").hidden = !s.keypad;
  if (s.screen_url && !document.querySelector("#screen-link a")) {
    document.getElementById("screen-link").innerHTML =
      ` <a href="${s.screen_url}">Bildschirm des Schranks</a> (die Seite des Steuerrechners).`;
  }
  if (s.display) {
    const text = s.display.rows.filter(r => r).join("\\n");
    if (text !== shownText) { document.getElementById("display").textContent = text; shownText = text; }
    document.getElementById("tone").textContent = s.display.tones.length ?
      `Ton: ${TONES[s.display.tones[s.display.tones.length - 1]]}, ${s.display.tones.length} bisher` : "Ton: noch keiner";
  }
  s.doors.forEach(showDoor);
  document.getElementById("frames").textContent = s.frames.join("\\n") || "(noch keine anderen Rahmen)";
  document.getElementById("poll").textContent = s.last_poll.join("\\n") || "(noch keine)";
  window.refreshes += 1;
}
for (const [form, field, path, status] of [["scan", "code", "/scan", "scan-status"], ["keys", "digits", "/keys", "keys-status"]]) {
  document.getElementById(form).onsubmit = async (e) => {
    e.preventDefault();
    const input = document.getElementById(field);
    const r = await post(path, {code: input.value});
    document.getElementById(status).textContent = r.message;
    input.value = "";
    refresh();
  };
}
document.getElementById("defect-key").onclick = async () => {
  const r = await post("/keys", {code: "D"});
  document.getElementById("keys-status").textContent = r.message;
  refresh();
};
refresh(); setInterval(refresh, 500);
</script></body></html>"""


def make_handler(board: BoardEmulator, scanner: ScannerEmulator | None,
                 display: DisplayEmulator | None = None, keypad: ScannerEmulator | None = None,
                 screen_url: str | None = None):
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
                shown_display = None
                if display is not None:
                    with display.changed:
                        shown_display = {"rows": list(display.rows), "tones": list(display.tones)}
                self._json(200, {"port": board.port, "doors": doors, "frames": shown[::-1],
                                 "last_poll": polls, "display": shown_display,
                                 "screen_url": screen_url, "keypad": keypad is not None})
            else:
                self._json(404, {"message": "Diese Seite gibt es nicht."})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "Zu viele Daten."})
                return
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
            try:
                if self.path == "/scan" and scanner is not None:
                    code = form.get("code", "").strip()
                    if not code:
                        self._json(400, {"message": "Bitte zuerst einen Code eingeben."})
                        return
                    scanner.scan(code)
                    self._json(200, {"message": "Gescannt. Die Anzeige sagt, was geschieht."})
                elif self.path == "/keys" and keypad is not None:
                    # Digits, and the D key (a defect) of a 4 x 4 keypad.
                    digits = "".join(ch for ch in form.get("code", "").upper()
                                     if ch.isdigit() or ch == "D")
                    if not digits:
                        self._json(400, {"message": "Bitte die Ziffern eingeben."})
                        return
                    keypad.scan(digits)  # the digits, then the confirm key (CR)
                    self._json(200, {"message": "Eingegeben. Die Anzeige sagt, was geschieht."})
                elif self.path == "/door":
                    board_no, lock = int(form.get("board", 0)), int(form.get("lock", 0))
                    actions = {"close": board.close_door, "open": board.open_door,
                               "take": board.take_item, "put": board.put_item}
                    actions[form.get("action", "")](lock, board_no)
                    self._json(200, {"message": "ok"})
                else:
                    self._json(404, {"message": "Diese Aktion gibt es nicht."})
            except (KeyError, ValueError) as error:
                self._json(400, {"message": f"Nicht möglich: {error}"})
    return Handler


class EmulatorPage(ServerThread):
    def __init__(self, board: BoardEmulator, scanner: ScannerEmulator | None,
                 host: str = "127.0.0.1", port: int = 5001, *, display: DisplayEmulator | None = None,
                 keypad: ScannerEmulator | None = None, screen_url: str | None = None) -> None:
        super().__init__(host, port, make_handler(board, scanner, display, keypad, screen_url),
                         "emulator-page")
