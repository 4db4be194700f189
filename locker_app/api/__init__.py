from flask import Blueprint

bp = Blueprint("api", __name__)

from locker_app.api import public, routes  # noqa: E402,F401  (registers the views)
