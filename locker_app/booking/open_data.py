"""The open-data export at a stable address: /open-data/nutzung.csv and .json."""
from __future__ import annotations

from datetime import date

from flask import Response, request

from locker_app.booking import bp
from locker_app.extensions import db
from locker_app.services import open_data


def _period() -> tuple[date, date]:
    first, last = open_data.default_period()
    try:
        first = date.fromisoformat(request.args.get("from", "")) if request.args.get("from") else first
        last = date.fromisoformat(request.args.get("to", "")) if request.args.get("to") else last
    except ValueError:
        pass
    if first > last:
        first, last = last, first
    return first, last


@bp.get("/open-data/nutzung.<kind>")
def open_data_export(kind: str):
    first, last = _period()
    if kind == "json":
        body, mimetype = open_data.as_json(db.session, first, last), "application/json"
    elif kind == "csv":
        body, mimetype = open_data.as_csv(db.session, first, last), "text/csv"
    else:
        return Response("Only nutzung.csv and nutzung.json.\n", status=404, mimetype="text/plain")
    return Response(body, mimetype=mimetype, headers={"Cache-Control": "public, max-age=3600",
                                                      "Access-Control-Allow-Origin": "*"})
