"""Why a string is not a CID, in words a user can act on.

parse_cid says that a string is refused; this module says why (wrong prefix,
a character outside the base's alphabet, cut short), for the target parser's
messages."""

from __future__ import annotations

from multiformats import multibase

from agent.ipfs.varint import VarintError, VarintProblem, read_uvarint

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# prefix -> (name, alphabet, whether case matters, bits per character for the power-of-two bases)
_BASES: dict[str, tuple[str, str, bool, int | None]] = {
    "b": ("base32", "abcdefghijklmnopqrstuvwxyz234567", False, 5),
    "B": ("base32", "abcdefghijklmnopqrstuvwxyz234567", False, 5),
    "k": ("base36", "0123456789abcdefghijklmnopqrstuvwxyz", False, None),
    "K": ("base36", "0123456789abcdefghijklmnopqrstuvwxyz", False, None),
    "z": ("base58btc", _B58, True, None),
    "f": ("base16", "0123456789abcdef", False, 4),
    "F": ("base16", "0123456789abcdef", False, 4),
    "m": ("base64", _B64 + "+/", True, 6),
    "u": ("base64url", _B64 + "-_", True, 6),
}
_ALPHABET_WORDS = {
    "base32": "the letters a-z and the digits 2-7",
    "base36": "the letters a-z and the digits 0-9",
    "base58btc": "letters and digits except 0, O, I and l",
    "base16": "the digits 0-9 and the letters a-f",
    "base64": "letters, digits, '+' and '/'",
    "base64url": "letters, digits, '-' and '_'",
}
_CUT = "it was cut short, or has characters missing or extra"


def explain_invalid_cid(text: str, exc: Exception | None = None) -> str:
    """Why `text` (which parse_cid refused) is not a CID, in words a user can act on."""
    if len(text) > 1024:
        return f"{len(text)} characters is far longer than any CID"
    if text.startswith("Qm"):
        return _explain_v0(text, exc)
    name_alpha = _BASES.get(text[:1])
    if name_alpha is None:
        return (
            f"a CID starts with 'Qm' (CIDv0) or a multibase prefix such as 'b' (base32), 'k' (base36), "
            f"'z' (base58btc) or 'f' (base16); {text[:1]!r} is none of these"
        )
    name, alphabet, case_matters, bits = name_alpha
    body = text[1:]
    if not body:
        return "nothing follows the multibase prefix"
    for position, char in enumerate(body, start=2):
        if (char if case_matters else char.lower()) not in alphabet:
            return (
                f"the character {char!r} (position {position}) is not {name}, which uses only {_ALPHABET_WORDS[name]}"
            )
    if bits is not None and _stray_bits(body, alphabet, case_matters, bits):
        return f"its {len(body)} {name} characters do not end on a whole byte: {_CUT}"
    try:
        data = bytes(multibase.decode(text))
    except Exception:  # noqa: BLE001 - the library raises several unrelated types for bad input
        return _library_reason(text, exc)
    return _explain_v1_bytes(data) or _library_reason(text, exc)


def _explain_v0(text: str, exc: Exception | None) -> str:
    if len(text) != 46:
        return f"a CIDv0 (starting 'Qm') is exactly 46 base58btc characters; this one has {len(text)}"
    for position, char in enumerate(text, start=1):
        if char not in _B58:
            return (
                f"the character {char!r} (position {position}) is not base58btc, "
                f"which uses only {_ALPHABET_WORDS['base58btc']}"
            )
    return _library_reason(text, exc)


def _stray_bits(body: str, alphabet: str, case_matters: bool, bits: int) -> bool:
    spare = len(body) * bits % 8
    if spare >= bits:
        return True  # a whole character too many or too few
    last = alphabet.index(body[-1] if case_matters else body[-1].lower())
    return bool(spare and last & ((1 << spare) - 1))


def _explain_v1_bytes(data: bytes) -> str | None:
    fields: list[int] = []
    pos = 0
    for what in ("version", "content type (codec)", "hash function", "hash length"):
        try:
            value, pos = read_uvarint(data, pos, what)
        except VarintError as exc:
            if exc.problem is VarintProblem.NOT_MINIMAL:
                return None  # parse_cid's own words say which field is spelled too long
            return f"it ends before its {what} is complete: too short to be a CID ({_CUT})"
        fields.append(value)
    version, _codec, _hash, length = fields
    if version != 1:
        return f"it says CID version {version}; only version 1 is written this way (version 0 is 'Qm…')"
    if len(data) - pos != length:
        return f"its hash should be {length} bytes but {len(data) - pos} follow: {_CUT}"
    return None


def _library_reason(text: str, exc: Exception | None) -> str:
    if exc is None:
        return "it does not decode as a CID"
    message = str(exc)
    for lead in (f"{text!r} is not a valid CID: ", f"{text!r} is not a CID: ", f"{text!r}: "):
        message = message.removeprefix(lead)
    return message
