"""What the locker says to the visitor, in German and English: a short title that fits two
rows of a 20-column character display, and a longer hint for the cabinet's screen.
Pure: no I/O. ``message_for_event`` turns an observation of the controller into a message."""
from __future__ import annotations

from dataclasses import dataclass, field

LANGUAGES = ("de", "en")

# key: {language: (title, hint)}. Titles stay within 40 characters (two display rows).
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "idle": {
        "de": ("Bitte Code scannen", "Halten Sie den QR-Code vor den Scanner{keypad_de}."),
        "en": ("Please scan your code", "Hold the QR code up to the scanner{keypad_en}."),
    },
    "opening_pickup": {
        "de": ("Fach {compartment} öffnet sich", "Bitte nehmen Sie den Gegenstand heraus und "
               "schließen Sie die Tür."),
        "en": ("Compartment {compartment} is opening", "Please take the item out and close "
               "the door."),
    },
    "opening_return": {
        "de": ("Fach {compartment} öffnet sich", "Bitte stellen Sie den Gegenstand hinein und "
               "schließen Sie die Tür."),
        "en": ("Compartment {compartment} is opening", "Please put the item inside and close "
               "the door."),
    },
    "opening_staff": {
        "de": ("Fach {compartment} öffnet sich", "Die Parkverwaltung hat es geöffnet."),
        "en": ("Compartment {compartment} is opening", "The park staff opened it."),
    },
    "close_door": {
        "de": ("Bitte Tür schließen", "Fach {compartment} ist offen. Bitte schließen Sie die "
               "Tür, wenn Sie fertig sind."),
        "en": ("Please close the door", "Compartment {compartment} is open. Please close the "
               "door when you are done."),
    },
    "thanks_pickup": {
        "de": ("Danke! Viel Freude", "Bitte bringen Sie den Gegenstand pünktlich zurück."),
        "en": ("Thank you! Enjoy", "Please bring the item back on time."),
    },
    "thanks_return": {
        "de": ("Danke für die Rückgabe!", "{defect_de}Die Rückgabe ist gespeichert."),
        "en": ("Thank you for returning it!", "{defect_en}The return is recorded."),
    },
    "defect_thanks": {
        "de": ("Danke! Defekt gemeldet", "Das Personal prüft den Gegenstand, bevor er wieder "
               "verliehen wird."),
        "en": ("Thank you! Defect reported", "Staff check the item before it is lent again."),
    },
    "defect_how": {
        "de": ("Defekt: bitte nach Rückgabe", "Taste D gleich nach der Rückgabe, oder D, Ihre "
               "Nummer und Bestätigen, solange Sie den Gegenstand haben."),
        "en": ("Defect: after the return", "Press D right after the return, or D, your number "
               "and confirm while you have the item."),
    },
    "compartment_empty": {
        "de": ("Das Fach ist noch leer", "Bitte stellen Sie den Gegenstand hinein und scannen "
               "Sie den Code noch einmal."),
        "en": ("The compartment is still empty", "Please put the item inside and scan the "
               "code again."),
    },
    "door_failed": {
        "de": ("Fach {compartment} öffnet nicht", "Bitte rufen Sie uns an{hotline_de}."),
        "en": ("Compartment {compartment} did not open", "Please call us{hotline_en}."),
    },
    "too_early": {
        "de": ("Zu früh: Abholung ab {time} Uhr", "Bitte kommen Sie zur Abholzeit wieder."),
        "en": ("Too early: pickup from {time}", "Please come back at your pickup time."),
    },
    "expired": {
        "de": ("Die Abholzeit ist vorbei", "Bitte reservieren Sie neu oder rufen Sie uns "
               "an{hotline_de}."),
        "en": ("The pickup time is over", "Please book again or call us{hotline_en}."),
    },
    "cancelled": {
        "de": ("Diese Reservierung ist storniert", "Bitte reservieren Sie neu."),
        "en": ("This reservation is cancelled", "Please book again."),
    },
    "returned": {
        "de": ("Schon zurückgegeben", "Diese Reservierung ist abgeschlossen. Danke!"),
        "en": ("Already returned", "This reservation is complete. Thank you!"),
    },
    "not_readable": {
        "de": ("Code nicht lesbar, bitte noch einmal", "Halten Sie den Code ruhig, etwa "
               "10 cm vor den Scanner."),
        "en": ("Code not readable, please try again", "Hold the code still, about 10 cm from "
               "the scanner."),
    },
    "other_cabinet": {
        "de": ("Code für einen anderen Schrank", "Bitte prüfen Sie den Ort auf Ihrer "
               "Reservierung."),
        "en": ("Code for another cabinet", "Please check the place on your reservation."),
    },
    "unknown_code": {
        "de": ("Code unbekannt, bitte noch einmal", "Bitte tippen Sie die 8 Ziffern und "
               "dann Bestätigen."),
        "en": ("Unknown code, please try again", "Please type the 8 digits, then the "
               "confirm key."),
    },
    "keypad_locked": {
        "de": ("Tastatur gesperrt bis {time} Uhr", "Zu viele falsche Codes. Sie können den "
               "QR-Code weiter scannen."),
        "en": ("Keypad locked until {time}", "Too many wrong codes. You can still scan the "
               "QR code."),
    },
    "not_ready": {
        "de": ("Der Schrank startet noch", "Bitte versuchen Sie es in einer Minute noch "
               "einmal."),
        "en": ("The cabinet is starting", "Please try again in a minute."),
    },
    "unavailable": {
        "de": ("Dieses Fach ist nicht verfügbar", "Bitte rufen Sie uns an{hotline_de}."),
        "en": ("This compartment is unavailable", "Please call us{hotline_en}."),
    },
}

# Why a code opened nothing -> what the visitor reads.
REFUSAL_MESSAGES = {
    "too_early": "too_early", "expired": "expired", "no_show": "expired",
    "cancelled": "cancelled", "returned": "returned", "other_cabinet": "other_cabinet",
    "unknown_code": "unknown_code", "keypad_locked": "keypad_locked", "not_synced": "not_ready",
    "unknown_compartment": "unavailable", "door_still_open": "close_door",
}  # anything else (not_a_code, bad_signature, malformed, unknown_key, not_readable)


@dataclass(frozen=True)
class Message:
    key: str
    locale: str = "de"  # the visitor's language; German is always shown
    tone: str | None = None  # "yes" or "no"
    params: dict = field(default_factory=dict)

    def languages(self) -> tuple[str, ...]:
        return ("de",) if self.locale == "de" or self.locale not in LANGUAGES else ("de", self.locale)

    def text(self, language: str) -> tuple[str, str]:
        title, hint = TEXTS[self.key][language]
        return title.format(**self.params), hint.format(**self.params)


def common_params(hotline: str | None, keypad: bool) -> dict:
    return {"hotline_de": f": {hotline}" if hotline else "",
            "hotline_en": f": {hotline}" if hotline else "",
            "keypad_de": " oder tippen Sie Ihre 8-stellige Nummer" if keypad else "",
            "keypad_en": " or type your 8-digit number" if keypad else "",
            # First in the hint, so it fits the rows of a 20 x 4 display.
            "defect_de": "Kaputt? Dann Taste D drücken. " if keypad else "",
            "defect_en": "Broken? Press D now. " if keypad else ""}


def message_for_event(kind: str, compartment: int | None, detail: dict,
                      purpose: str | None) -> tuple[str, str | None] | None:
    """(message key, tone) for an observation the visitor should hear about, else None.
    ``purpose`` is what the compartment's last unlock was for. Refusals are handled by the
    caller, which knows the reservation's times."""
    if kind == "unlock_sent":
        return {"pickup": "opening_pickup", "return": "opening_return"}.get(
            detail.get("purpose", ""), "opening_staff"), "yes"
    if kind == "door_opened" and purpose in ("pickup", "return"):
        return "close_door", None
    if kind == "door_closed" and purpose == "pickup":
        return "thanks_pickup", None
    if kind == "return":
        return "thanks_return", "yes"
    if kind == "defect_reported":
        return "defect_thanks", "yes"
    if kind == "return_incomplete":
        return "compartment_empty", "no"
    if kind == "unlock_failed" or (kind == "unlock_unanswered" and "why" in detail):
        return "door_failed", "no"
    return None
