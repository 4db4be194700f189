"""Actions that are hard to undo ask once more, on a page of their own: retiring a site, a
cabinet, an item type, a controller or an item, disabling an account, opening a door from
afar. A wrong click on the button that sits beside "Edit" did it at once before (issue 32).

The first POST (without ``confirmed``) shows the question with everything the form sent
carried over; "Yes" sends it again with ``confirmed=yes`` and the action runs, "No" goes
back. It works without JavaScript and is checked by the same CSRF token as any form."""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import render_template, request, url_for

from locker_app.security import safe_next

CONFIRMED = "confirmed"


def asks_once_more(question):
    """Decorate a POST view. ``question(**view_args)`` gives (the question, the words of
    the yes button), or None when this time there is nothing to ask: putting something
    back into use, or a form the view will refuse anyway (a missing reason)."""
    def decorate(view):
        @wraps(view)
        def asking(**kwargs):
            asked = None if request.form.get(CONFIRMED) == "yes" else question(**kwargs)
            if asked is None:
                return view(**kwargs)
            text, yes = asked
            carried = [(name, value) for name, value in request.form.items(multi=True)
                       if name not in ("csrf_token", CONFIRMED)]
            return render_template("staff/confirm.html", title=text, yes=yes,
                                   carried=carried, action=request.path, back=_back())
        return asking
    return decorate


def _back() -> str:
    """The page the button was on, when it is one of this site's."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
        if safe_next(path):
            return path
    return url_for("staff.today")
