from locker_app import create_app
from locker_app.security import ConfigurationError

try:
    app = create_app()
except ConfigurationError as error:  # a plain sentence instead of a traceback
    raise SystemExit(f"The web site cannot start: {error}") from None
