from flask import Blueprint

bp = Blueprint("booking", __name__)

from locker_app.booking import lookup, pages, routes  # noqa: E402,F401  (registers the views)
