"""Issue 30, part 4: no answer 500 for any request. Every GET route of the site, as a
stranger, as staff and as an administrator, on SQLite and on PostgreSQL, is asked with odd
values in its path and in every query parameter the site reads; every answer is below 500.
The public API's writes refuse bodies that are not JSON in words, and a 405 names what is
allowed."""
from __future__ import annotations

import re

import pytest

from tests.conftest import DEMO_TOKEN, log_in, make_account

# Values that gave 500 on main (issue 30) and their neighbours: years far out, month 13,
# numbers no database column holds, negative and empty ones, text where a number belongs.
ODD_VALUES = ["0001-01-01", "2199-12-31", "2300-01-01", "9999-12-31", "2026-13-01",
              "2026-02-30", "99999999999999999999", "-1", "0", "", "abc", "2026-W99",
              "1e308", "９"]
# Every query parameter a page reads (request.args in locker_app, and the forms' GETs).
QUERY_NAMES = ["from", "to", "site", "type", "state", "q", "page", "show", "since", "after",
               "wait", "next", "sent", "actor", "action", "day", "item_type", "start", "end",
               "lang"]
PATH_VALUES = {"int": ["1", "99999999999999999999"],
               "default": ["stadtpark", "2026-12-24", "0001-01-01", "9999-12-31", "x"]}


def get_urls(app) -> list[tuple[str, bool]]:
    """Each GET route with each odd value in its path arguments; True beside the one with
    ordinary path values, which is also asked with every odd query."""
    urls = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        parts = re.findall(r"<(?:(\w+):)?(\w+)>", rule.rule)
        for index in range(len(PATH_VALUES["default"]) if parts else 1):
            url = rule.rule
            for converter, _name in parts:
                values = PATH_VALUES["int" if converter == "int" else "default"]
                url = re.sub(r"<(?:\w+:)?\w+>", values[index % len(values)], url, count=1)
            urls[url] = urls.get(url) or index == 0
    return sorted(urls.items())


def queries() -> list[str]:
    odd = ["&".join(f"{name}={value}" for name in QUERY_NAMES) for value in ODD_VALUES]
    # A good "from" with an odd "to" and the other way round: ranges, not only values.
    odd += [f"from=2026-01-01&to={value}"
            for value in ("0001-01-01", "2300-01-01", "9999-12-31", "2026-13-01")]
    odd += [f"from={value}&to=2026-12-31" for value in ("0001-01-01", "9999-12-31")]
    return odd


def clients(app):
    make_account(app, "staffer")
    make_account(app, "boss", "admin")
    stranger = app.test_client()
    staff, admin = app.test_client(), app.test_client()
    assert log_in(staff, "staffer").status_code == 302
    assert log_in(admin, "boss").status_code == 302
    return {"stranger": stranger, "staff": staff, "admin": admin}


def test_no_get_route_answers_500_for_odd_values(any_app):
    """On main: 32 answers 500 on each database (years 0001, 2199, 2300, 9999, month 13,
    huge numbers)."""
    any_app.config["RATELIMIT_ENABLED"] = False
    failures = []
    urls = get_urls(any_app)
    assert any(url.startswith("/staff/admin") for url, _ in urls)
    for role, client in clients(any_app).items():
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"} if role == "stranger" else {}
        for url, ordinary in urls:
            if url.startswith("/api/v1/controller/commands"):
                continue  # the long poll: its parameters have their own test
            if role == "stranger" and url.startswith("/staff/") and url != "/staff/login":
                continue  # sent to the login page (tests/test_staff_access.py)
            asked = [""] + (queries() if ordinary else [])
            if url.endswith(".pdf"):  # slow to make: the ranges only
                asked = asked[:1] + asked[-6:]
            for query in asked:
                response = client.get(f"{url}?{query}" if query else url, headers=headers)
                if response.status_code >= 500:
                    failures.append(f"{role} GET {url}?{query} -> {response.status_code}")
    assert not failures, f"{len(failures)} answers 500, e.g.:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("path", ["/api/v1/reservations",
                                  "/api/v1/reservations/x/cancel"])
@pytest.mark.parametrize("body", ["form", "multipart", "text"])
def test_the_public_api_refuses_bodies_that_are_not_json_in_words(any_app, path, body):
    """On main the public API answered 500 to a form-encoded or multipart body."""
    client = any_app.test_client()
    if body == "form":
        response = client.post(path, data={"site": "stadtpark"})
    elif body == "multipart":
        response = client.post(path, data={"site": "stadtpark", "file": (b"x", "x.txt")},
                               content_type="multipart/form-data")
    else:
        response = client.post(path, data="site=stadtpark", content_type="text/plain")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]


@pytest.mark.parametrize("query", ["from=9999-12-29&to=9999-12-31",
                                   "from=2199-12-30&to=2200-01-02", "from=2026-13-01",
                                   "from=2026-06-01&to=9999-12-31"])
def test_availability_refuses_dates_out_of_range_in_words(any_app, query):
    response = any_app.test_client().get(f"/api/v1/sites/stadtpark/availability?{query}")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]


def test_a_405_names_the_methods_allowed(any_app):
    client = any_app.test_client()
    for method, url in (("put", "/api/v1/reservations"), ("delete", "/s/stadtpark/"),
                        ("post", "/api/v1/sites"), ("put", "/staff/login")):
        response = getattr(client, method)(url)
        assert response.status_code == 405, (method, url)
        assert response.headers.get("Allow"), (method, url)


@pytest.mark.parametrize("query,why", [
    ("from=0001-01-01&to=9999-12-30", "2000"), ("to=9999-12-30", "2000"),
    ("from=2020-01-01&to=2026-01-01", "drei Jahre"), ("from=2026-13-01", "2026-06-10"),
    ("from=2026-06-02&to=2026-06-01", "from")])
def test_the_open_data_files_refuse_a_period_they_cannot_give_in_words(app, query, why):
    """On main ``from=0001-01-01&to=9999-12-30`` worked 12.5 s (four at once made the start
    page take 18 s), and a far end date gave 500."""
    for kind in ("csv", "json"):
        response = app.test_client().get(f"/open-data/nutzung.{kind}?{query}")
        assert response.status_code == 400, response.get_data(as_text=True)[:200]
        assert why in response.get_data(as_text=True)


def test_the_open_data_files_are_limited_per_address_and_made_once(app, monkeypatch):
    from locker_app.services import open_data
    made = []
    real = open_data.as_csv
    monkeypatch.setattr(open_data, "as_csv", lambda *args: made.append(args) or real(*args))
    app.config["LIMIT_OPEN_DATA_PER_ADDRESS"] = "3 per hour"
    client = app.test_client()
    answers = [client.get("/open-data/nutzung.csv?from=2026-01-01&to=2026-06-30")
               for _ in range(4)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert len(made) == 1 and answers[0].data == answers[2].data
    assert int(answers[-1].headers["Retry-After"]) > 0
