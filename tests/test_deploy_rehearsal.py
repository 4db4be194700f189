"""Issue 33: the rehearsal of the production layout (scripts/deploy-rehearsal) in its short
form: every step passes."""
import shutil
import subprocess

import pytest

from tests.conftest import IN_CI, postgres_problem


def _missing() -> list[str]:
    missing = [tool for tool in ("nginx", "mosquitto", "mosquitto_passwd")
               if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin"))]
    if postgres_problem():
        missing.append("PostgreSQL")
    try:
        import redis
        redis.Redis(host="127.0.0.1", socket_timeout=2, socket_connect_timeout=2).ping()
    except Exception:  # any failure: no Redis for the rehearsal
        missing.append("Redis on 127.0.0.1:6379")
    return missing


def test_the_short_rehearsal_passes_every_step(capsys):
    missing = _missing()
    if missing:
        message = f"the rehearsal needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(f"CI must run the deploy rehearsal, but {message}")
        pytest.skip(message)
    from bench.deploy_rehearsal import rehearse
    said: list[str] = []
    assert rehearse(short=True, say=said.append) == 0, "\n".join(said)
    assert said[-1] == "12 of 12 steps passed", said[-1]
    assert all(line.startswith("[ok] ") for line in said[:-1]), "\n".join(said)
