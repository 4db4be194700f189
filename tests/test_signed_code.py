from datetime import datetime, timezone

import pytest

import signed_code as sc

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc)
T1 = datetime(2026, 3, 29, 2, 30, tzinfo=timezone.utc)


@pytest.fixture
def key():
    return sc.new_private_key()


def claims(**changes):
    base = dict(reservation_id=42, cabinet_id=1, compartment=3, valid_from=T0, valid_until=T1)
    base.update(changes)
    return sc.CodeClaims(**base)


def test_round_trip(key):
    token = sc.sign(key, 7, claims())
    assert len(token) == sc.TOKEN_LENGTH
    assert sc.verify(token, {7: key.public_key()}) == claims(key_id=7)


@pytest.mark.parametrize("seed", range(2))
def test_every_single_changed_character_is_refused(key, seed):
    token = sc.sign(key, 1, claims(reservation_id=seed))
    keys = {1: key.public_key()}
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(token)):
        for replacement in alphabet:
            if replacement == token[position]:
                continue
            altered = token[:position] + replacement + token[position + 1:]
            with pytest.raises(sc.InvalidCode):
                sc.verify(altered, keys)


def test_code_signed_by_another_key_is_refused(key):
    stranger = sc.new_private_key()
    token = sc.sign(stranger, 1, claims())
    with pytest.raises(sc.InvalidCode) as error:
        sc.verify(token, {1: key.public_key()})
    assert error.value.reason == "bad_signature"


def test_unknown_key_id(key):
    token = sc.sign(key, 9, claims())
    with pytest.raises(sc.InvalidCode) as error:
        sc.verify(token, {1: key.public_key()})
    assert error.value.reason == "unknown_key"


@pytest.mark.parametrize("text", ["", "hello", "x" * 110, "A" * 109, "Ä" * 110, "A" * 5000])
def test_garbage_is_malformed(key, text):
    with pytest.raises(sc.InvalidCode) as error:
        sc.verify(text, {0: key.public_key()})
    assert error.value.reason in ("malformed", "unknown_key", "bad_signature")


def test_extract_token_from_url_and_bare(key):
    token = sc.sign(key, 1, claims())
    assert sc.extract_token(f"https://locker.example/r/{token}") == token
    assert sc.extract_token(f"http://127.0.0.1:5000/r/{token}?x=1") == token
    assert sc.extract_token(f"  {token}  ") == token
    assert sc.extract_token("https://locker.example/r/short") is None
    assert sc.extract_token("") is None


def test_window_is_minutes():
    c = claims()
    assert c.window_contains(T0) and not c.window_contains(T1)
