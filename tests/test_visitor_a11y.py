"""Accessibility details of the visitor pages that axe does not judge: the language of error
pages, autocomplete on personal fields, the error summary and title, the focus ring's
contrast (WCAG 1.4.11: 3:1 against every background it is drawn on)."""
import re

from freezegun import freeze_time

NOW = "2026-06-10 08:00:00"


def test_error_pages_say_the_language_they_are_in(client):
    client.get("/lang/en")
    page = client.get("/r/" + "A" * 110).get_data(as_text=True)
    assert '<html lang="en">' in page and "does not exist" in page
    page = client.get("/no-such-page").get_data(as_text=True)
    assert '<html lang="en">' in page


def test_personal_fields_say_what_they_are(client):
    page = client.get("/s/stadtpark/reserve/rollator").get_data(as_text=True)
    assert re.search(r'<input[^>]*autocomplete="name"[^>]*name="name"|<input[^>]*name="name"[^>]*autocomplete="name"', page)
    assert re.search(r'<input[^>]*autocomplete="email"[^>]*name="email"|<input[^>]*name="email"[^>]*autocomplete="email"', page)


@freeze_time(NOW)
def test_errors_are_summed_up_at_the_top_with_links_and_in_the_title(client):
    page = client.post("/s/stadtpark/reserve/rollator", data={
        "date": "2026-06-10", "start": "10:30", "end_date": "2026-06-10", "end": "09:00",
        "name": ""}).get_data(as_text=True)
    title = re.search(r"<title>([^<]*)</title>", page).group(1)
    assert title.startswith("Fehler: ")
    summary = re.search(r'<div class="error-box" role="alert" tabindex="-1" data-focus>(.*?)</div>',
                        page, re.S)
    assert summary, "no error summary that takes the focus"
    assert '<a href="#name">' in summary.group(1) and "Es gibt ein Problem" in summary.group(1)


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_focus_ring_stands_out_on_every_background():
    from pathlib import Path
    css = (Path(__file__).resolve().parent.parent / "locker_app/static/style.css").read_text()
    backgrounds = set(re.findall(r"background(?:-color)?:\s*(#[0-9a-fA-F]{6})", css))
    accent = re.search(r"--accent:\s*(#[0-9a-fA-F]{6})", css).group(1)
    backgrounds |= {"#ffffff", accent}
    ring = re.search(r"--focus-outer:\s*(#[0-9a-fA-F]{6})", css).group(1)
    inner = re.search(r"--focus-inner:\s*(#[0-9a-fA-F]{6})", css).group(1)
    assert "f5a623" not in css.lower()  # 2.0:1 on white
    for background in backgrounds:
        # Either ring of the two-colour indicator reaches 3:1 against the background.
        assert max(contrast(ring, background), contrast(inner, background)) >= 3, background
