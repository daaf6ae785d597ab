"""A person's name: one rule for the CLI, the API, the page and every store.

A name is compared and stored in one form: NFKC-normalised (fullwidth ``Ａｄａ`` is ``Ada``; a
precomposed and a combining ``é`` are one letter) with its whitespace folded (ends stripped,
runs of spaces, tabs and line breaks one space). It holds 1-64 letters of any script, with their
combining marks and digits, joined by spaces and ``. ' ’ - _ · ・`` (and the zero-width joiners
Indic and Persian names need); it starts with a letter or digit and ends with one (or a mark).
So nothing in it can act as a path (``/``, ``\\``, ``..``), as markup or as a quote, and every
valid name can be addressed as ``/v1/people/{name}``.

A name may not mix scripts (a Cyrillic "е" inside "George" would file one person's faces under a
look-alike of another's name), except the mixes a language writes: Japanese (Kanji with Hiragana
and Katakana) and Korean (Hanja with Hangul).
"""

from __future__ import annotations

import re
import unicodedata

from facerec.errors import InputError
from facerec.text import printable, scripts

MAX_NAME_CHARS = 64
#: What may join the words of a name, besides letters, marks and digits.
JOINERS = frozenset(" .'-_\u2019\u00b7\u30fb\u200c\u200d")
#: Scripts one name may mix (the first word of each letter's Unicode name, as text.scripts gives).
MIXES = (
    frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),  # 山田 はなこ, 田中 ハナ
    frozenset({"CJK", "HANGUL"}),
)
RULE = (
    f"1-{MAX_NAME_CHARS} letters (any script), digits and marks, joined by spaces and . ' ’ - _ · ・; "
    "starting and ending with a letter or digit"
)
_DOTS = re.compile(r"\.\.")


class InvalidName(InputError):
    """A person's name that breaks the rule; the message quotes it and says why."""


def fold_name(name: str) -> str:
    """The form a name is compared and stored in: NFKC, whitespace folded (no checking)."""
    return " ".join(unicodedata.normalize("NFKC", str(name)).split())


def shown_name(name: str | None) -> str:
    """A name as a person writes it, for output meant to be read: ``Colin_Powell`` (a folder's or
    LFW's way of writing it) is shown ``Colin Powell``. Stored names, JSON and URLs keep the name
    as it is, so nothing is renamed."""
    return "" if name is None else str(name).replace("_", " ")


def check_name(name: str) -> str:
    """``name`` in its stored form (:func:`fold_name`), or InvalidName saying what is wrong."""
    folded = fold_name(name)
    shown = printable(folded[:80])
    if not 1 <= len(folded) <= MAX_NAME_CHARS:
        raise InvalidName(f"invalid person name {shown!r}: it has {len(folded)} characters; use {RULE}")
    bad = sorted({ch for ch in folded if not (_is_part(ch) or ch in JOINERS)})
    if bad:
        raise InvalidName(
            f"invalid person name {shown!r}: {printable(''.join(bad))!r} cannot be part of a name; use {RULE}"
        )
    if not _is_word(folded[0]) or not (_is_word(folded[-1]) or _is_mark(folded[-1])) or _DOTS.search(folded):
        raise InvalidName(f"invalid person name {shown!r}: use {RULE}")
    mixed = scripts(folded) - {"COMMON"}
    if len(mixed) > 1 and not any(mixed <= mix for mix in MIXES):
        raise InvalidName(
            f"invalid person name {shown!r}: it mixes the {', '.join(sorted(mixed)).lower()} scripts, which "
            "lets look-alike names pass for each other; write it in one script"
        )
    return folded


def _is_word(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "L" or unicodedata.category(ch) == "Nd"


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def _is_part(ch: str) -> bool:
    return _is_word(ch) or _is_mark(ch)
