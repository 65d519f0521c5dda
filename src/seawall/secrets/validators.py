"""Checksums that providers build into their tokens. A value that fails is not a finding.

Register a validator with ``@validator("name")``; rules name it in ``validator = "..."``.
"""

from __future__ import annotations

import base64 as _b64
import binascii as _binascii
import json as _json
import re as _re
import zlib
from typing import Callable

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

Validator = Callable[[str], bool]
VALIDATORS: dict[str, Validator] = {}


def validator(name: str) -> Callable[[Validator], Validator]:
    def register(func: Validator) -> Validator:
        VALIDATORS[name] = func
        return func
    return register


def base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def crc32_base62(body: str) -> str:
    """GitHub's and npm's token checksum: CRC32 of the random part, base62, 6 chars."""
    return base62(zlib.crc32(body.encode()), 6)


@validator("crc32-base62")
def _crc32_suffix(token: str) -> bool:
    """``<prefix>_<random><6-char checksum>``: the last 6 chars are the CRC32 of the random part."""
    body = token.rsplit("_", 1)[-1]
    if len(body) < 7:
        return False
    return crc32_base62(body[:-6]) == body[-6:]


BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(BASE36[rest])
    return "".join(reversed(digits)).rjust(width, "0")


@validator("gitlab-routable-crc32")
def _gitlab_routable(token: str) -> bool:
    """GitLab's routable tokens: ``<prefix><base64url payload>.[<version>.]<len><crc>``.

    The last 7 chars are the CRC32, base36 and zero-padded, of everything before them
    (prefix included); the 2 chars before the CRC give the payload's length in base36.
    A legacy token (fixed-length random, no ``.``) has no checksum and passes.
    """
    if "." not in token:
        return True
    if len(token) < 12 or token[-10] != ".":
        return False
    head, length, crc = token[:-9], token[-9:-7], token[-7:]
    if _base36(zlib.crc32(token[:-7].encode()), 7) != crc:
        return False
    payload = head.rsplit(".", 2)[0] if head.count(".") >= 2 else head[:-1]
    return length.isalnum() and int(length, 36) <= len(payload)


@validator("atlassian-crc32")
def _atlassian_crc32(token: str) -> bool:
    """Atlassian tokens (ATATT…, ATCTT…, ATBB…): the last 8 chars are the CRC32, in
    upper-case hex, of everything before them."""
    if len(token) < 16:
        return False
    return f"{zlib.crc32(token[:-8].encode()):08X}" == token[-8:]


DISCORD_EPOCH_MS = 1_420_070_400_000  # 2015-01-01T00:00:00Z, Discord's snowflake epoch


@validator("discord-snowflake")
def _discord_snowflake(token: str) -> bool:
    """A Discord bot token's first part is the bot's user id (a snowflake) in base64url:
    it must decode to 17–20 decimal digits whose timestamp falls between 2015 and 2040."""
    import base64
    first = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    except ValueError:
        return False
    if not (17 <= len(raw) <= 20 and raw.isdigit() and raw[:1] != b"0"):
        return False
    created_ms = (int(raw) >> 22) + DISCORD_EPOCH_MS
    return DISCORD_EPOCH_MS < created_ms < 2_208_988_800_000  # before 2040-01-01


@validator("basic-auth-base64")
def _basic_auth_base64(value: str) -> bool:
    """Base64 of ``user:password`` (npm's ``_auth``, HTTP Basic): both sides non-empty,
    printable, and the password not a ``${VAR}`` reference."""
    import base64
    import binascii
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    user, sep, password = text.partition(":")
    return (bool(sep) and bool(user) and len(password) >= 4 and text.isprintable()
            and not password.startswith("${"))


# Keys, connection strings, JWTs and generic credentials (keys.toml, databases.toml,
# generic.toml). Structure checks: a value that merely sits between the right markers, or
# has the right prefix, is not a finding unless it decodes to what it claims to be.

_ARMOR_NOISE = _re.compile(r"""["']\s*[+,]?\s*["']|\\[nrt]|\s""")
"""Line breaks in every spelling a key is pasted with: real ones, ``\\n`` escapes inside a
string literal, and the quotes and ``+``/``,`` of a literal split over lines."""


def _unarmor(body: str) -> bytes | None:
    """The bytes of a base64 body (headers already removed), or None if it is not base64."""
    text = _ARMOR_NOISE.sub("", body).strip("\"'")
    if len(text) < 16:
        return None
    try:
        return _b64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (_binascii.Error, ValueError):
        return None


def _der_length(data: bytes, at: int) -> tuple[int, int] | None:
    """(length, offset of the contents) of the DER element whose length byte is at ``at``."""
    if at >= len(data):
        return None
    first = data[at]
    if first < 0x80:
        return first, at + 1
    count = first & 0x7F
    if count == 0 or count > 4 or at + 1 + count > len(data):
        return None
    return int.from_bytes(data[at + 1:at + 1 + count], "big"), at + 1 + count


def _der_sequence(data: bytes) -> bool:
    """A single DER SEQUENCE that fills ``data`` exactly and opens with a version INTEGER
    (0 or 1) or a SEQUENCE (an encryption algorithm): the shape of every PKCS#1, SEC1, DSA,
    PKCS#8 and encrypted PKCS#8 private key. A PKCS#1 public key opens with its modulus."""
    if len(data) < 32 or data[0] != 0x30:
        return False
    parsed = _der_length(data, 1)
    if parsed is None:
        return False
    length, start = parsed
    if start + length != len(data):
        return False
    if data[start:start + 3] in (b"\x02\x01\x00", b"\x02\x01\x01"):
        return True
    if data[start] != 0x30:  # EncryptedPrivateKeyInfo: SEQUENCE { algorithm, OCTET STRING }
        return False
    algorithm = _der_length(data, start + 1)
    if algorithm is None or data[algorithm[1]:algorithm[1] + 1] != b"\x06":
        return False
    after = algorithm[1] + algorithm[0]
    return data[after:after + 1] == b"\x04"


@validator("pem-private-key")
def _pem_private_key(body: str) -> bool:
    """The text between a PEM private key's BEGIN and END lines decodes to a DER private
    key. With legacy ``Proc-Type: 4,ENCRYPTED`` headers the body is ciphertext: it must
    decode to whole cipher blocks instead."""
    encrypted = "Proc-Type:" in body
    if encrypted:
        body = body[body.index("DEK-Info:"):] if "DEK-Info:" in body else ""
        body = _re.sub(r"^DEK-Info:[^\r\n\\]*", "", body)
    data = _unarmor(body)
    if data is None:
        return False
    if encrypted:
        return len(data) >= 64 and len(data) % 8 == 0
    return _der_sequence(data)


@validator("openssh-private-key")
def _openssh_private_key(body: str) -> bool:
    """An OpenSSH private key body decodes to the ``openssh-key-v1`` container."""
    data = _unarmor(body)
    return data is not None and data.startswith(b"openssh-key-v1\x00") and len(data) > 64


_CRC24_INIT, _CRC24_POLY = 0xB704CE, 0x1864CFB


def _crc24(data: bytes) -> int:
    crc = _CRC24_INIT
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= _CRC24_POLY
    return crc & 0xFFFFFF


@validator("pgp-private-key")
def _pgp_private_key(armored: str) -> bool:
    """An ASCII-armored PGP block (headers, blank line, base64, optional ``=CRC24``) whose
    first packet is a secret-key packet (tag 5), and whose CRC24 matches where present."""
    text = armored.replace("\\r", "\n").replace("\\n", "\n").replace("\r", "")
    lines = [line.strip() for line in text.split("\n")]
    body, checksum, in_headers = [], None, True
    for line in lines:
        if in_headers and (":" in line or not line):
            continue  # "Version: …", "Comment: …" and the blank line after them
        in_headers = False
        if line.startswith("=") and len(line) == 5:
            checksum = line[1:]
        elif line:
            body.append(line)
    data = _unarmor("".join(body))
    if data is None or len(data) < 32:
        return False
    tag = data[0]
    if tag & 0xC0 == 0xC0:
        secret_key = tag & 0x3F == 5
    else:
        secret_key = tag & 0x80 == 0x80 and (tag >> 2) & 0x0F == 5
    if not secret_key:
        return False
    if checksum is None:
        return True
    try:
        expected = int.from_bytes(_b64.b64decode(checksum, validate=True), "big")
    except (_binascii.Error, ValueError):
        return False
    return _crc24(data) == expected


@validator("putty-private-key")
def _putty_private_key(block: str) -> bool:
    """A PuTTY ``.ppk`` file: the ``Private-Lines: N`` count matches the base64 lines
    after it, and they decode to a non-empty private blob."""
    lines = block.replace("\\r", "").replace("\r", "").replace("\\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if line.startswith("Private-Lines:"):
            try:
                count = int(line.split(":", 1)[1])
            except ValueError:
                return False
            private = lines[i + 1:i + 1 + count]
            if count < 1 or len(private) != count or any(":" in p for p in private):
                return False
            data = _unarmor("".join(private))
            return data is not None and len(data) >= 16
    return False


def _b64url(value: str) -> bytes | None:
    try:
        return _b64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (_binascii.Error, ValueError):
        return None


@validator("jwk-private")
def _jwk_private(value: str) -> bool:
    """A JWK private member (``d``, or ``k`` of an ``oct`` key): base64url of 16+ bytes."""
    if not _re.fullmatch(r"[A-Za-z0-9_\-]+", value):
        return False
    data = _b64url(value)
    return data is not None and len(data) >= 16 and len(set(data)) > 8


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: list[int]) -> int:
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i, g in enumerate(generator):
            checksum ^= g if (top >> i) & 1 else 0
    return checksum


@validator("bech32")
def _bech32(value: str) -> bool:
    """A Bech32 string (age keys, ``AGE-SECRET-KEY-1…``): the 6-char checksum holds."""
    text = value.lower()
    hrp, sep, data = text.rpartition("1")
    if not sep or not hrp or len(data) < 7 or any(c not in _BECH32 for c in data):
        return False
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    return _bech32_polymod(expanded + [_BECH32.index(c) for c in data]) == 1


_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")
_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")


@validator("pkcs12-base64")
def _pkcs12_base64(value: str) -> bool:
    """Base64 of a PKCS#12 (PFX) file, judged by structure: SEQUENCE { INTEGER 3,
    ContentInfo { data or signedData, … } }, with every byte the outer length claims."""
    text = _re.sub(r"\s|\\[nr]", "", value)
    text = text[:len(text) - len(text) % 4]
    try:
        data = _b64.b64decode(text, validate=True)
    except (_binascii.Error, ValueError):
        return False
    if data[:2] == b"\x30\x80":
        rest, whole = data[2:], len(data) >= 256
    else:
        parsed = _der_length(data, 1) if data[:1] == b"\x30" else None
        if parsed is None:
            return False
        length, start = parsed
        rest, whole = data[start:], start + length <= len(data)
    if not whole or rest[:3] != b"\x02\x01\x03" or rest[3:4] != b"\x30":
        return False
    inner = rest[4:]
    if inner[:1] == b"\x80":
        inner = inner[1:]
    else:
        parsed = _der_length(rest, 4)
        if parsed is None:
            return False
        inner = rest[parsed[1]:]
    return inner[:11] in (_PKCS7_DATA, _PKCS7_SIGNED)


_JWT_EXAMPLES = ({"sub": "1234567890", "name": "John Doe"},)
_JWT_CLAIMS = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}


@validator("jwt")
def _jwt(token: str) -> bool:
    """``header.payload.signature``: the header is a JSON object naming an ``alg`` other
    than ``none``, the payload a JSON object with at least one registered claim (iss,
    sub, aud, exp, nbf, iat, jti), the signature 16+ bytes. The jwt.io sample (sub
    1234567890, John Doe) is documentation, not a token."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return False
    decoded = [_b64url(p) for p in parts]
    if any(d is None for d in decoded):
        return False
    try:
        header = _json.loads(decoded[0])
        payload = _json.loads(decoded[1])
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return False
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or len(decoded[2] or b"") < 16:
        return False
    if not _JWT_CLAIMS & set(payload):
        return False  # {"k": "value"}: a library's encode() example, not an issued token
    return not any(all(payload.get(k) == v for k, v in sample.items())
                   for sample in _JWT_EXAMPLES)


# Generic credentials: a value assigned to a name like ``password`` or ``api_key``. Real
# packages are full of such names holding code, words, paths, ids and hashes; a value is
# a credential only if it looks like one.

_PLACEHOLDER = _re.compile(
    r"(?i)example|sample|dummy|placeholder|changeme|change[_\-]?me|redacted|your[_\-]?|"
    r"^my[_\-]?(?:pass|secret|token|key|api)|fake|mock|xxxx|\*\*\*|\.\.\.|••|"
    r"^(?:null|none|nil|undefined|true|false|empty|string|required|optional|hidden)$|"
    r"^<|>$|^\[|\]$|^%|^\$|^#\{|^@[\w\-]+/|\{\{|\$\{|\$\(|%\(|%s|"
    r"password|passwd|secret|token|apikey|api[_\-]key|insert|replace|enter|todo|fixme")
_CODE = _re.compile(
    r"[\[\]{}<>;]|=>|==|&&|\|\||::|->|process\.env|this\.|self\.|window\.|document\.|"
    r"os\.environ|getenv|^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$|"  # a.b.c
    r"^[A-Za-z_$][\w$.]*\(|\($")  # f(x), a.b(

_SHAPES = _re.compile(
    r"(?i)^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128})$|"  # hashes, ids
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|"  # UUIDs
    r"^sha(?:1|256|384|512)-|^(?:md5|sha\d+|sri)[:\-]|"  # integrity strings
    r"^data:|^iVBORw0KGgo|^/9j/|^R0lGOD|^PHN2Z|^UklGR|"  # base64 images
    r"://|^[~.]{0,2}/|^[A-Za-z]:[\\/]|^\\\\|"  # URLs and paths
    r"^\$2[aby]?\$|^\$argon2|^\$[156]\$|^pbkdf2|^scrypt|^bcrypt|"  # password *hashes*
    r"^\{[^{}]*\}$|^ENC\(|^vault:|^!vault|"  # Maven/Jasypt-encrypted, vault references
    r"^(?:\d+|\d+\.\d+(?:\.\d+)*)$|^v?\d+\.\d+\.\d+|"  # numbers, versions
    r"^[\w\-]+\.(?:js|ts|json|py|pem|key|crt|txt|ya?ml|html?|css|md|sh|env)$")  # file names
_HEXISH = _re.compile(
    r"(?:0x)?(?:[0-9a-f]{8,}|[0-9A-F]{8,})$|"  # hex ids and hashes of any length
    r"[0-9a-z]{6,10}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{10,14}$")  # UUID-shaped


def _sequential(value: str, run: int = 4) -> bool:
    """Holds a run like ``abcd``, ``uvwxyz`` or ``4567``: documentation values are typed
    that way (``AB1C2defGHijkLMNo3PqQRstUvwxyz``); random ones almost never are."""
    length = 1
    for prev, cur in zip(value.lower(), value.lower()[1:]):
        length = length + 1 if cur.isalnum() and ord(cur) == ord(prev) + 1 else 1
        if length >= run:
            return True
    return False


_WORD = _re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]|\d+|[^A-Za-z\d]+")
_VOWELS = set("aeiouyAEIOUY")


def _wordy(value: str) -> bool:
    """Made of words: ``Get-Location``, ``bearerTokenValue``, ``SOME_CONSTANT_NAME``,
    ``utf8Encoder2``: three quarters of the letters and digits are in words (3+ letters
    with a vowel, or short upper-case acronyms), at most one stray letter, few digits;
    the way names and text are, not random tokens."""
    pieces = _WORD.findall(value)
    alnum = sum(len(p) for p in pieces if p.isalnum())
    if not alnum:
        return False
    words = sum(len(p) for p in pieces if p.isalpha() and (
        (len(p) >= 3 and _VOWELS & set(p)) or (p.isupper() and 2 <= len(p) <= 5)))
    strays = sum(1 for p in pieces if p.isalpha() and len(p) < 3 and not p.isupper())
    digits = sum(len(p) for p in pieces if p.isdigit())
    return digits <= 4 and strays <= 1 and words >= 0.75 * alnum


def _credential(value: str, min_classes: int) -> bool:
    if len(value) < 8 or not value.isascii():
        return False  # translated UI text ("Contraseña") is not a credential
    if _PLACEHOLDER.search(value) or _CODE.search(value):
        return False
    if _SHAPES.search(value) or _wordy(value):
        return False
    if max(value.count(c) for c in set(value)) > len(value) // 3:
        return False  # "aaaaaaaa", "a-a-a-a-a", "0x000000"
    if _HEXISH.match(value) or _sequential(value):
        return False
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value), any(not c.isalnum() for c in value)))
    return classes >= min_classes


@validator("credential-password")
def _credential_password(value: str) -> bool:
    """A literal password: no placeholder, code, path, hash, id or word salad, and three
    character classes of lower, upper, digit and symbol (two from 16 chars on)."""
    return _credential(value, 2 if len(value) >= 16 else 3)


@validator("credential-token")
def _credential_token(value: str) -> bool:
    """A literal secret, token or key: as a password, with two classes, 12+ chars."""
    return len(value) >= 12 and _credential(value, 2)


_CONNECTION_PLACEHOLDER = _re.compile(
    r"(?i)^(?:pass|pwd|pw|passwd|password\d*|secret|changeme|root|admin|administrator|user|"
    r"username|guest|postgres|mysql|mongo|mongodb|redis|rabbit|rabbitmq|amqp|default|toor|"
    r"letmein|test|testing|tester|demo|dev|local|example|sample|dummy|xxx+|x+|\*+|\.+|"
    r"foo|bar|baz|qux|abc|abc123|123|1234|12345|123456|12345678|123456789|s3cr3t|"
    r"p@ss(?:w0rd)?|p@55w0rd|passw0rd|pa55word|hunter2|sa|clickhouse|snowflake|oracle|tiger|"
    r"mssql|sql|db|database|pgpass|dbpass|dbpassword|mypass|mypassword|yourpassword|"
    r"userpass|pass123|password123|secretpassword|supersecret|auth|token|key|none|null)$|"
    r"^[$%<\[{@#]|[<>{}]|^:|^\d{1,10}$|^psw$|pass(?:w(?:or)?d)?|secret|s3cr3t|example|sample|dummy|"
    r"(?:^|[^A-Za-z])(?:foo|bar|baz|qux)(?:[^A-Za-z]|$)|"
    r"your[_\-]?|placeholder|changeme|redacted|\*\*|xxxx|hunter2")


@validator("connection-password")
def _connection_password(value: str) -> bool:
    """A password inside a connection string or URL that is not a placeholder, a
    documented default (``postgres``, ``guest``, ``root``…), a variable reference or a
    toy value shorter than 5 characters (``u:p``)."""
    return len(value) >= 5 and not _CONNECTION_PLACEHOLDER.search(value)


@validator("http-basic-credentials")
def _http_basic_credentials(value: str) -> bool:
    """``Authorization: Basic`` value: base64 of printable ``user:password`` with a real
    password (not a placeholder, a variable or a documented default)."""
    try:
        text = _b64.b64decode(value, validate=True).decode("utf-8")
    except (_binascii.Error, ValueError, UnicodeDecodeError):
        return False
    user, sep, password = text.partition(":")
    return (bool(sep) and bool(user) and len(password) >= 6 and text.isprintable()
            and _connection_password(password) and password.lower() != user.lower()
            and not _sequential(password)
            and password.lower() not in {"opensesame", "open sesame"})
