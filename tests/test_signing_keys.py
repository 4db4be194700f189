"""The signing keys are parsed once per process and read again only when the key files
change: a booking no longer reads and parses every key file (issue 11), and a rotation is
still seen at once."""
import os

import signed_code
from locker_app.services import signing


def test_keys_are_parsed_once_and_a_rotation_is_seen_at_once(tmp_path, monkeypatch):
    parsed = []
    real = signed_code.private_key_from_pem
    monkeypatch.setattr(signed_code, "private_key_from_pem", lambda data: parsed.append(1) or real(data))
    first = signing.create_key(tmp_path)
    assert set(signing.load_private_keys(tmp_path)) == {first}
    count = len(parsed)
    for _ in range(5):
        assert set(signing.load_private_keys(tmp_path)) == {first}
    assert len(parsed) == count  # not parsed again
    second = signing.create_key(tmp_path)
    assert set(signing.load_private_keys(tmp_path)) == {first, second}
    (tmp_path / f"key-{first}.pem").unlink()
    assert set(signing.load_private_keys(tmp_path)) == {second}


def test_the_qr_of_a_link_is_drawn_once(app):
    from locker_app.shared.reservation_page import qr_svg as _qr_svg
    _qr_svg.cache_clear()
    first = _qr_svg("https://example.org/r/abc")
    assert _qr_svg("https://example.org/r/abc") is first
    assert _qr_svg.cache_info().hits == 1
    assert _qr_svg("https://example.org/r/abd") != first


def test_a_key_added_within_the_folders_time_tick_is_seen(tmp_path, monkeypatch):
    """The folder's change time spares a booking the listing, but only once it is a second
    older than the listing: a key added within the same coarse tick of the file system's
    clock leaves it unchanged."""
    first = signing.create_key(tmp_path)
    assert set(signing.load_private_keys(tmp_path)) == {first}
    listed = tmp_path.stat().st_mtime_ns
    second = signing.create_key(tmp_path)
    os.utime(tmp_path, ns=(listed, listed))  # as if within the same tick
    assert set(signing.load_private_keys(tmp_path)) == {first, second}
    # Settled (a second and more after the change): the listing is skipped.
    old = listed - 5 * signing.SETTLED_NS
    os.utime(tmp_path, ns=(old, old))
    assert set(signing.load_private_keys(tmp_path)) == {first, second}
    listings = []
    real_iterdir = type(tmp_path).iterdir
    monkeypatch.setattr(type(tmp_path), "iterdir", lambda self: listings.append(self) or real_iterdir(self))
    for _ in range(3):
        assert set(signing.load_private_keys(tmp_path)) == {first, second}
    assert listings == []
