"""Reading OpenSSH public keys: a pure parser and fingerprint, so the store needs no SSH library.

A key is accepted only if its blob really is the key its type names (the SSH wire format of
RFC 4253 / 5656 / 8709): a typo, a truncated paste or a private key refuses with one line,
never a key that can't log in. DSA and RSA under 2048 bits are refused as too weak.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from .errors import Invalid

MIN_RSA_BITS = 2048
MAX_COMMENT = 255
#: A public-key line is a few hundred characters (RSA 16384 about 2.8k); a file far bigger is
#: not a public key, and is refused before anything is decoded.
MAX_TEXT = 16_384

_ED25519 = ("ssh-ed25519", "sk-ssh-ed25519@openssh.com")
_ECDSA_CURVES = {  # key type -> (curve name in the blob, length of an uncompressed point)
    "ecdsa-sha2-nistp256": ("nistp256", 65),
    "ecdsa-sha2-nistp384": ("nistp384", 97),
    "ecdsa-sha2-nistp521": ("nistp521", 133),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("nistp256", 65),
}
KEY_TYPES: tuple[str, ...] = (*_ED25519, *_ECDSA_CURVES, "ssh-rsa")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}\Z")


@dataclass(frozen=True)
class ParsedKey:
    """One public key: its type, its blob in base64, its comment and its SHA256 fingerprint."""

    key_type: str
    blob_b64: str
    comment: str | None
    fingerprint: str

    @property
    def public_key(self) -> str:
        """The "TYPE BASE64" part of an authorized_keys line (no comment)."""
        return f"{self.key_type} {self.blob_b64}"


def fingerprint(blob: bytes) -> str:
    """The key's fingerprint exactly as ``ssh-keygen -lf`` prints it: SHA256 + unpadded base64."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as typed (with or without ``SHA256:``) in its stored form, or Invalid."""
    value = text.strip() if isinstance(text, str) else ""
    if value and not value.startswith("SHA256:") and ":" not in value:
        value = "SHA256:" + value
    value = value.rstrip("=")
    if not _FINGERPRINT.match(value):
        shown = _CONTROL.sub("?", value)[:60]
        if re.fullmatch(r"(MD5:)?([0-9a-f]{2}:){15}[0-9a-f]{2}", value):
            raise Invalid(
                f"{shown} is an MD5 fingerprint: give the SHA256 one (ssh-keygen -lf KEY.pub), "
                "as 'teamaccess keys' lists it."
            )
        raise Invalid(
            f"Invalid key fingerprint {shown!r}: give it as 'teamaccess keys' lists it, "
            "e.g. SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8."
        )
    return value


def parse_public_key(text: str) -> ParsedKey:
    """Parse one OpenSSH public-key line (``TYPE BASE64 [COMMENT]``), or a .pub file's contents.

    Blank lines and ``#`` comment lines are skipped; exactly one key must remain. Raises Invalid
    with one line saying what is wrong and what to give instead.
    """
    if not isinstance(text, str):
        raise Invalid("Invalid SSH key: expected text such as the contents of ~/.ssh/id_ed25519.pub.")
    if len(text) > MAX_TEXT:
        raise Invalid(
            f"Invalid SSH key: {len(text)} characters is far too long for a public key; "
            "give the one line of your .pub file."
        )
    if "PRIVATE KEY" in text:
        raise Invalid(
            "That is a PRIVATE key: never share it. Give the public half instead "
            "(the .pub file, e.g. ~/.ssh/id_ed25519.pub)."
        )
    if "BEGIN SSH2 PUBLIC KEY" in text:
        raise Invalid(
            "That key is in RFC 4716 format: convert it with 'ssh-keygen -i -f KEY' and give "
            "the one-line OpenSSH form."
        )
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise Invalid("No SSH key given: paste the one line of your .pub file (ssh-ed25519 AAAA...).")
    if len(lines) > 1:
        raise Invalid(
            f"Found {len(lines)} lines where one SSH key was expected: add keys one at a time."
        )
    return _parse_line(lines[0])


def _parse_line(line: str) -> ParsedKey:
    parts = line.split(None, 2)
    key_type = parts[0]
    shown_type = _CONTROL.sub("?", key_type)[:40]
    if key_type == "ssh-dss":
        raise Invalid(
            "DSA keys (ssh-dss) are refused as too weak: make an ed25519 key with "
            "'ssh-keygen -t ed25519' and add its .pub file."
        )
    if key_type.endswith("-cert-v01@openssh.com"):
        raise Invalid(
            "That is an SSH certificate, not a public key: add the plain .pub key it was made from."
        )
    if key_type not in KEY_TYPES:
        raise Invalid(
            f"Invalid SSH key: {shown_type!r} is not a key type this accepts; give an ed25519, "
            "ecdsa or rsa (2048 bits or more) public key, e.g. the line in ~/.ssh/id_ed25519.pub."
        )
    if len(parts) < 2:
        raise Invalid(f"Invalid SSH key: the {key_type} key's base64 part is missing.")
    blob_b64 = parts[1]
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except (binascii.Error, ValueError):
        raise Invalid(
            f"Invalid SSH key: the {key_type} key's base64 part is damaged; copy the whole line "
            "of the .pub file again."
        ) from None
    _check_blob(key_type, blob)
    comment = parts[2].strip() if len(parts) > 2 else ""
    if _CONTROL.search(comment):
        raise Invalid("Invalid SSH key comment: it holds control characters; remove them.")
    if len(comment) > MAX_COMMENT:
        raise Invalid(
            f"Invalid SSH key comment: {len(comment)} characters, over the limit of {MAX_COMMENT}."
        )
    # Stored canonical: re-encoding drops any stray padding variants of the same blob.
    return ParsedKey(key_type, base64.b64encode(blob).decode(), comment or None, fingerprint(blob))


class _Reader:
    """Reads the SSH wire format's strings and mpints from a key blob."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise ValueError("truncated")
        size = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        start, self.pos = self.pos + 4, self.pos + 4 + size
        if self.pos > len(self.data):
            raise ValueError("truncated")
        return self.data[start : self.pos]

    def done(self) -> bool:
        return self.pos == len(self.data)


def _check_blob(key_type: str, blob: bytes) -> None:
    """Raise Invalid unless ``blob`` is a well-formed key of ``key_type``."""
    damaged = Invalid(
        f"Invalid SSH key: the {key_type} key's data is damaged or truncated; copy the whole "
        "line of the .pub file again."
    )
    reader = _Reader(blob)
    try:
        if reader.string() != key_type.encode():
            raise Invalid(
                f"Invalid SSH key: its data is not a {key_type} key (the type word and the "
                "base64 part disagree); copy the whole line again."
            )
        if key_type in _ED25519:
            if len(reader.string()) != 32:
                raise damaged
        elif key_type in _ECDSA_CURVES:
            curve, point_size = _ECDSA_CURVES[key_type]
            if reader.string() != curve.encode():
                raise damaged
            point = reader.string()
            if len(point) != point_size or point[0] != 4:
                raise damaged
        else:  # ssh-rsa: e, then n
            exponent, modulus = reader.string(), reader.string()
            if not exponent or not modulus:
                raise damaged
            bits = int.from_bytes(modulus, "big").bit_length()
            if bits < MIN_RSA_BITS:
                raise Invalid(
                    f"RSA keys under {MIN_RSA_BITS} bits are refused as too weak (this one has "
                    f"{bits}): make an ed25519 key with 'ssh-keygen -t ed25519'."
                )
        if key_type.startswith("sk-"):
            reader.string()  # the security key's application, e.g. "ssh:"
    except ValueError:
        raise damaged from None
    if not reader.done():
        raise damaged
