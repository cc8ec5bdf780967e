"""
Secrets quoted for each file format that carries them, so that every file delivers the exact
value the database accounts were given.

One function per format, called by the templates as ``salt["moodle_ha_secrets.<name>"]``:

- :py:func:`mariadb_option`: a value of a MariaDB option file (``wsrep_sst_auth``, the
  clustercheck ``password``), double-quoted with the escapes MariaDB's reader undoes.
- :py:func:`php_string`: a single-quoted PHP literal (config.php).
- :py:func:`haproxy_password`: a SHA-512 crypt hash for an HAProxy ``userlist``; the stats
  password itself never reaches haproxy.cfg. Deterministic, so a second render gives the same
  file. :py:func:`sha512_crypt` is Ulrich Drepper's algorithm in pure Python (the ``crypt``
  module is gone in Python 3.13).

keepalived's ``auth_pass`` and the backup key are rendered plainly: validation
(``moodle_ha.validate``) rejects the characters those formats cannot carry.
"""

import hashlib

__virtualname__ = "moodle_ha_secrets"

# MariaDB's option-file reader (mysys/my_default.c, search_default_file_with_ext):
# - it reads a line with fgets into a 4096-byte buffer (a longer line is cut into two);
# - remove_end_comment() cuts at a '#' outside quotes (a backslash protects a quote inside);
# - spaces around the value are stripped, then one pair of matching quotes is removed;
# - then, inside or outside quotes, \n \t \r \b \s \" \' \\ become the character they name and
#   any other backslash stays as it is.
# So a double-quoted value with \, " and the line-breaking characters escaped reads back
# byte for byte: the quotes keep '#', ';', leading/trailing spaces and the other quote.
_MARIADB_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
}
# Room left on a 4095-byte line for the option name and " = ".
MARIADB_VALUE_MAX = 4000

CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SHA512_ROUNDS_DEFAULT = 5000
_SHA512_ROUNDS_MIN = 1000
_SHA512_ROUNDS_MAX = 999999999
_SHA512_SALT_MAX = 16
# Order of the 64 digest bytes in the encoded hash (groups of three, last byte alone).
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26),
    (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32),
    (12, 33, 54), (34, 55, 13), (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38),
    (18, 39, 60), (40, 61, 19), (62, 20, 41),
)


def __virtual__():
    return __virtualname__


def _text(value, what):
    if value is None:
        raise ValueError(f"{what}: no value")
    text = value if isinstance(value, str) else str(value)
    if "\0" in text:
        raise ValueError(f"{what}: a NUL character cannot be carried")
    return text


def mariadb_option(value):
    """
    ``value`` as a MariaDB option-file value: double-quoted, ``\\``, ``"``, newline, CR, tab
    and backspace escaped; my_print_defaults and the server read back exactly ``value``.

    CLI Example:

    .. code-block:: bash

        salt '*' moodle_ha_secrets.mariadb_option 'p#ss "word"'
    """
    text = _text(value, "MariaDB option value")
    quoted = '"' + "".join(_MARIADB_ESCAPES.get(char, char) for char in text) + '"'
    if len(quoted.encode("utf-8")) > MARIADB_VALUE_MAX:
        raise ValueError(f"MariaDB option value: longer than {MARIADB_VALUE_MAX} bytes quoted"
                         " (MariaDB reads option lines of 4095 bytes at most)")
    return quoted


def php_string(value):
    """
    ``value`` as a single-quoted PHP string literal: only ``\\`` and ``'`` are escaped (the
    only escapes PHP undoes there); every other byte, UTF-8 included, stands for itself.

    CLI Example:

    .. code-block:: bash

        salt '*' moodle_ha_secrets.php_string "it's"
    """
    text = _text(value, "PHP string")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _b64_24bit(b2, b1, b0, count):
    word = (b2 << 16) | (b1 << 8) | b0
    chars = []
    for _ in range(count):
        chars.append(CRYPT_ALPHABET[word & 0x3F])
        word >>= 6
    return "".join(chars)


def _repeat(digest, length):
    """``length`` bytes of ``digest`` repeated (the spec's P and S sequences)."""
    return (digest * (length // len(digest) + 1))[:length]


def _parse_setting(setting):
    """(salt, rounds, rounds given) of a ``$6$[rounds=N$]salt[$...]`` setting."""
    if not setting.startswith("$6$"):
        raise ValueError(f"not a SHA-512 crypt setting: {setting!r}")
    rest = setting[3:]
    rounds, custom = SHA512_ROUNDS_DEFAULT, False
    if rest.startswith("rounds="):
        number, sep, after = rest[len("rounds="):].partition("$")
        if sep and number.isdigit():
            rounds = min(max(int(number), _SHA512_ROUNDS_MIN), _SHA512_ROUNDS_MAX)
            custom, rest = True, after
    return rest.split("$", 1)[0][:_SHA512_SALT_MAX], rounds, custom


def sha512_crypt(password, setting):
    """
    crypt(3)'s SHA-512 method (``$6$``, Ulrich Drepper's "Unix crypt using SHA-256 and
    SHA-512"): ``setting`` is ``$6$<salt>`` or ``$6$rounds=<N>$<salt>`` (anything after the
    salt's ``$`` is ignored, so a full hash checks a password); the password is hashed as UTF-8.

    CLI Example:

    .. code-block:: bash

        salt '*' moodle_ha_secrets.sha512_crypt 'Hello world!' '$6$saltstring'
    """
    salt_text, rounds, custom = _parse_setting(setting)
    key = password.encode("utf-8") if isinstance(password, str) else bytes(password)
    salt = salt_text.encode("ascii")

    alternate = hashlib.sha512(key + salt + key).digest()
    ctx = hashlib.sha512(key + salt)
    ctx.update(_repeat(alternate, len(key)))
    length = len(key)
    while length:
        ctx.update(alternate if length & 1 else key)
        length >>= 1
    digest = ctx.digest()

    p_bytes = _repeat(hashlib.sha512(key * len(key)).digest(), len(key))
    s_bytes = _repeat(hashlib.sha512(salt * (16 + digest[0])).digest(), len(salt))

    for i in range(rounds):
        ctx = hashlib.sha512(p_bytes if i & 1 else digest)
        if i % 3:
            ctx.update(s_bytes)
        if i % 7:
            ctx.update(p_bytes)
        ctx.update(digest if i & 1 else p_bytes)
        digest = ctx.digest()

    encoded = "".join(_b64_24bit(digest[a], digest[b], digest[c], 4) for a, b, c in _SHA512_ORDER)
    encoded += _b64_24bit(0, 0, digest[63], 2)
    prefix = f"$6$rounds={rounds}$" if custom else "$6$"
    return f"{prefix}{salt_text}${encoded}"


def _user_salt(user):
    digest = hashlib.sha256(b"moodle_ha haproxy userlist\0" + user.encode("utf-8")).digest()
    return "".join(CRYPT_ALPHABET[byte & 0x3F] for byte in digest[:_SHA512_SALT_MAX])


def haproxy_password(password, user):
    """
    A SHA-512 crypt hash of ``password`` for ``user <user> password <hash>`` in an HAProxy
    userlist (HAProxy checks it with crypt(3): libxcrypt on Debian knows ``$6$``).

    The same password and user always give the same hash (an idempotent haproxy.cfg). Its
    salt is the start of a first crypt of the password (with a salt from the user name): a
    salt from a fast hash of the password (an HMAC) would let anyone who reads the file test
    guesses at the speed of that fast hash instead of 5000 SHA-512 rounds.

    CLI Example:

    .. code-block:: bash

        salt '*' moodle_ha_secrets.haproxy_password 's3cret' admin
    """
    text = _text(password, "HAProxy password")
    name = _text(user, "HAProxy user")
    first = sha512_crypt(text, "$6$" + _user_salt(name))
    salt = first.rsplit("$", 1)[1][:_SHA512_SALT_MAX]
    return sha512_crypt(text, "$6$" + salt)
