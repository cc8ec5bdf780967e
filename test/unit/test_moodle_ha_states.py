"""Unit tests for _states/moodle_ha.py (the end-to-end checks of moodle_ha.check)."""

import sys
import types

import pytest

from saltmodules import load

PASSWORD = "Nf3 a#b'c\"d\\e$f${HOME}%g:h;i`j é€"


class FakePyMySQL(types.ModuleType):
    """pymysql stand-in: keeps what connect() got and answers SELECT @@hostname."""

    class MySQLError(Exception):
        pass

    def __init__(self):
        super().__init__("pymysql")
        self.calls = []

    def connect(self, **kwargs):
        self.calls.append(kwargs)
        fake = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql):
                fake.sql = sql

            def fetchone(self):
                return ("moodle1",)

        class Conn:
            def cursor(self):
                return Cursor()

            def close(self):
                pass

        return Conn()


@pytest.fixture
def state(monkeypatch):
    fake = FakePyMySQL()
    monkeypatch.setitem(sys.modules, "pymysql", fake)
    mod = load("_states/moodle_ha.py", "moodle_ha_state_under_test")
    mod.__opts__ = {"test": False}
    mod.__salt__ = {}
    return mod, fake


def test_db_ok_sends_the_password_as_utf8_bytes(state):
    # PyMySQL would encode a str as latin-1: '€' raises, 'é' becomes another byte.
    mod, fake = state
    ret = mod.db_ok("172.30.77.100", port=3307, user="moodle", password=PASSWORD,
                    database="moodle", timeout=1)
    assert ret["result"] is True, ret["comment"]
    assert fake.calls[0]["password"] == PASSWORD.encode("utf-8")
    assert "moodle1" in ret["comment"] and PASSWORD not in ret["comment"]
