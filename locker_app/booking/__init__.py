from flask import Blueprint

bp = Blueprint("booking", __name__)

from locker_app.booking import lookup, open_data, pages, routes  # noqa: E402,F401  (registers the views)
