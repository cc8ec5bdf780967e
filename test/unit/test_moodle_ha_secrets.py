"""
_modules/moodle_ha_secrets.py: SHA-512 crypt against the published test vectors of its
specification and against this machine's crypt(3) and openssl, and each quoting function for
every printable ASCII character, control characters and non-ASCII, read back by the readers'
rules written out here and, where this machine has them, by the real readers
(my_print_defaults, php).

The readers below are also used by test/render/test_secrets_render.py on rendered files.
"""

import shutil
import subprocess
import warnings

import pytest

from saltmodules import load

secrets = load("_modules/moodle_ha_secrets.py", "moodle_ha_secrets_under_test")

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as system_crypt  # removed in Python 3.13
except ImportError:
    system_crypt = None

# "Unix crypt using SHA-256 and SHA-512" (Ulrich Drepper), the SHA-512 test vectors.
SPEC_VECTORS = [
    ("$6$saltstring", "Hello world!",
     "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdF"
     "CoEOfaS35inz1"),
    ("$6$rounds=10000$saltstringsaltstring", "Hello world!",
     "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8v"
     "OuZeHBy/YTBmSK6H9qs/y3RnOaw5v."),
    ("$6$rounds=5000$toolongsaltstring", "This is just a test",
     "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1"
     "yxdYcz/e1JSbq3y6JMxxl8audkUEm0"),
    ("$6$rounds=1400$anotherlongsaltstring",
     "a very much longer text to encrypt.  This one even stretches over morethan one line.",
     "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9"
     "t0oSwbtEW7o7UmJEiDwGqd8p4ur1"),
    ("$6$rounds=77777$short", "we have a short salt string but not a short password",
     "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtl"
     "cGZelFl5CxtgfiAc0"),
    ("$6$rounds=123456$asaltof16chars..", "a short string",
     "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK"
     "25fs2xXgMNrCzIMVcgEJAstJeonj1"),
    ("$6$rounds=10$roundstoolow", "the minimum number is still observed",
     "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZE"
     "QpyUNGc0dqbpBYYBaHHrsX."),
]

PRINTABLE = [chr(code) for code in range(0x20, 0x7F)]
CONTROL = ["\t", "\n", "\r", "\b", "\x0b", "\x0c", "\x1b", "\x7f"]
NON_ASCII = ["é", "€", "😀", "\u00a0", "é€😀"]
# Each character alone, between letters, doubled, and at both ends of a longer value.
CHARACTERS = PRINTABLE + CONTROL + NON_ASCII


def _shapes(char):
    return [char, f"a{char}b", char * 2, f"{char}x{char}", f"{char} {char}"]


VALUES = [value for char in CHARACTERS for value in _shapes(char)] + [
    "".join(PRINTABLE), " leading", "trailing ", "# comment", "; comment", "\\", "\\\\",
    "ends with \\", '"', "'", '"quoted"', "'quoted'", "$VAR ${VAR} $(cmd)", "p#ss:wo=rd",
]


# --------------------------------------------------------------------------- readers


MARIADB_ESCAPES = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"b": b"\b", b"s": b" ",
                   b'"': b'"', b"'": b"'", b"\\": b"\\"}
# my_isspace() with my_charset_latin1: ASCII whitespace (NBSP is not one).
MARIADB_SPACE = b" \t\n\r\x0b\x0c"


def _mariadb_value(raw):
    """One option line's value as mysys/my_default.c reads it (bytes; comment cut first)."""
    quote, escape, end = None, False, len(raw)
    for pos in range(len(raw)):
        char = raw[pos:pos + 1]
        if char in (b"'", b'"') and not escape:
            quote = char if quote is None else (None if quote == char else quote)
        if quote is None and char == b"#":
            end = pos
            break
        escape = bool(quote) and char == b"\\" and not escape
    name, _, value = raw[:end].partition(b"=")
    value = value.strip(MARIADB_SPACE)
    if len(value) > 1 and value[:1] in (b'"', b"'") and value[-1:] == value[:1]:
        value = value[1:-1]
    out, pos = bytearray(), 0
    while pos < len(value):
        if value[pos:pos + 1] == b"\\" and pos != len(value) - 1:
            nxt = value[pos + 1:pos + 2]
            out += MARIADB_ESCAPES.get(nxt, b"\\" + nxt)
            pos += 2
        else:
            out += value[pos:pos + 1]
            pos += 1
    return name.strip(MARIADB_SPACE).decode(), bytes(out)


def mariadb_options(data, group):
    """Options of ``group`` in an option file's bytes, as mysys/my_default.c reads them."""
    options, current = {}, None
    for raw in data.split(b"\n"):
        line = raw.lstrip(MARIADB_SPACE)
        if not line or line[:1] in (b"#", b";"):
            continue
        if line[:1] == b"[":
            current = line[1:line.index(b"]")].rstrip(MARIADB_SPACE).decode()
            continue
        name, value = _mariadb_value(line)
        if current == group:
            options[name] = value
    return options


def php_single_quoted(literal):
    """The value of a PHP single-quoted literal: ``\\\\`` and ``\\'`` undone, all else kept."""
    assert literal[:1] == literal[-1:] == "'"
    body, out, pos = literal[1:-1], [], 0
    while pos < len(body):
        if body[pos] == "\\" and pos + 1 < len(body) and body[pos + 1] in "\\'":
            out.append(body[pos + 1])
            pos += 2
        else:
            assert body[pos] != "'", "an unescaped quote ends the literal early"
            out.append(body[pos])
            pos += 1
    return "".join(out)


# --------------------------------------------------------------------------- SHA-512 crypt


@pytest.mark.parametrize("setting, password, expected", SPEC_VECTORS)
def test_sha512_crypt_gives_the_specifications_test_vectors(setting, password, expected):
    assert secrets.sha512_crypt(password, setting) == expected


@pytest.mark.parametrize("setting, password, expected", SPEC_VECTORS)
def test_a_full_hash_as_setting_checks_its_password(setting, password, expected):
    assert secrets.sha512_crypt(password, expected) == expected
    assert secrets.sha512_crypt(password + " ", expected) != expected


PASSWORDS = ["", "a", "x" * 63, "x" * 64, "x" * 65, "y" * 200, "".join(PRINTABLE), "é€😀",
             "p#ss 'w\"o\\rd' $VAR"]


@pytest.mark.skipif(system_crypt is None, reason="no crypt module (Python >= 3.13)")
@pytest.mark.parametrize("password", PASSWORDS)
def test_sha512_crypt_matches_the_systems_crypt(password):
    for setting in ("$6$saltstring", "$6$rounds=1234$0123456789abcdef"):
        assert secrets.sha512_crypt(password, setting) == system_crypt.crypt(password, setting)


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl not installed")
@pytest.mark.parametrize("password", [p for p in PASSWORDS if p])
def test_sha512_crypt_matches_openssl_passwd(password):
    out = subprocess.run(["openssl", "passwd", "-6", "-salt", "Zx./09azAZ", "-stdin"],
                         input=password.encode() + b"\n", capture_output=True, check=True)
    assert secrets.sha512_crypt(password, "$6$Zx./09azAZ") == out.stdout.decode().strip()


def test_haproxy_password_is_deterministic_and_checks_only_its_password():
    hashed = secrets.haproxy_password("s3 cr#t'", "admin")
    assert hashed == secrets.haproxy_password("s3 cr#t'", "admin")
    prefix, method, salt, encoded = hashed.split("$")
    assert (prefix, method) == ("", "6")
    assert len(salt) == 16 and set(salt) <= set(secrets.CRYPT_ALPHABET)
    assert len(encoded) == 86
    assert secrets.sha512_crypt("s3 cr#t'", hashed) == hashed
    assert secrets.sha512_crypt("s3 cr#t", hashed) != hashed
    # Another user or another password: another salt.
    assert secrets.haproxy_password("s3 cr#t'", "admin2").split("$")[2] != salt
    assert secrets.haproxy_password("s3 cr#t!", "admin").split("$")[2] != salt


def test_haproxy_password_hash_uses_only_characters_haproxys_parser_leaves_alone():
    for password in ("".join(PRINTABLE), "é€😀", "\\"):
        hashed = secrets.haproxy_password(password, "admin")
        assert set(hashed) <= set(secrets.CRYPT_ALPHABET + "$")


@pytest.mark.skipif(system_crypt is None, reason="no crypt module (Python >= 3.13)")
def test_haproxy_password_hash_is_what_crypt3_checks():
    password = "".join(PRINTABLE) + "é€😀"
    hashed = secrets.haproxy_password(password, "admin")
    assert system_crypt.crypt(password, hashed) == hashed


# --------------------------------------------------------------------------- MariaDB


@pytest.mark.parametrize("value", VALUES, ids=[repr(v) for v in VALUES])
def test_mariadb_option_reads_back_exactly(value):
    quoted = secrets.mariadb_option(value)
    assert "\n" not in quoted
    line = f"password = {quoted}".encode()
    assert _mariadb_value(line) == ("password", value.encode())


def test_mariadb_option_escapes_only_what_mariadb_undoes():
    assert secrets.mariadb_option("plain") == '"plain"'
    assert secrets.mariadb_option("a#b 'c'") == "\"a#b 'c'\""
    assert secrets.mariadb_option('\\"\n\t\r\b') == '"\\\\\\"\\n\\t\\r\\b"'
    assert secrets.mariadb_option("é€😀") == '"é€😀"'


def test_mariadb_option_refuses_what_it_cannot_carry():
    with pytest.raises(ValueError, match="NUL"):
        secrets.mariadb_option("a\0b")
    with pytest.raises(ValueError, match="4095 bytes"):
        secrets.mariadb_option("x" * 4000)


@pytest.mark.skipif(not shutil.which("my_print_defaults"), reason="MariaDB client not installed")
def test_my_print_defaults_reads_every_quoted_value_back(tmp_path):
    # Values with a newline cannot be told apart in my_print_defaults' line output.
    values = [v for v in VALUES if "\n" not in v]
    path = tmp_path / "values.cnf"
    body = "".join(f"v{index} = {secrets.mariadb_option(value)}\n"
                   for index, value in enumerate(values))
    path.write_bytes(("[t]\n" + body).encode())
    cmd = ["my_print_defaults", f"--defaults-file={path}", "--show", "t"]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode and b"unknown option '--show'" in proc.stderr:
        proc = subprocess.run(cmd[:2] + cmd[3:], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    read = dict(line[2:].split(b"=", 1) for line in proc.stdout.split(b"\n") if line)
    for index, value in enumerate(values):
        assert read[f"v{index}".encode()] == value.encode(), repr(value)


# --------------------------------------------------------------------------- PHP


@pytest.mark.parametrize("value", VALUES, ids=[repr(v) for v in VALUES])
def test_php_string_reads_back_exactly(value):
    assert php_single_quoted(secrets.php_string(value)) == value


def test_php_string_escapes_only_backslash_and_quote():
    assert secrets.php_string("a'b\\c$d\"e{$x}\n") == "'a\\'b\\\\c$d\"e{$x}\n'"
    assert secrets.php_string("é€😀") == "'é€😀'"


@pytest.mark.skipif(not shutil.which("php"), reason="php CLI not installed")
def test_php_reads_every_literal_back(tmp_path):
    path = tmp_path / "values.php"
    items = "".join(f"    {secrets.php_string(value)},\n" for value in VALUES)
    path.write_bytes(f"<?php\nreturn [\n{items}];\n".encode())
    out = subprocess.run(
        ["php", "-r", 'foreach (include $argv[1] as $v) { echo bin2hex($v), "\\n"; }',
         str(path)], capture_output=True, check=True, text=True).stdout
    assert [bytes.fromhex(line) for line in out.splitlines()] == [v.encode() for v in VALUES]
