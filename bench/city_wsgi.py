"""The web site as gunicorn serves it, plus a bare endpoint of the same app: the yardstick
of bench.city_scale (``gunicorn -c config/gunicorn.conf.py bench.city_wsgi:app``)."""
from wsgi import app

app.add_url_rule("/bare", "bare", lambda: "ok")
