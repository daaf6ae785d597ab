"""Text from outside (file names, upload names, person names) made safe to print and to store."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """``text`` with every control or format character (ESC, CR, BEL, bidi overrides, ...) shown
    as a ``\\xNN``/``\\uNNNN`` escape: a file name cannot move the cursor, recolour or rewrite a
    terminal, or reorder what a reader sees."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def scripts(text: str) -> set[str]:
    """The writing systems of ``text``'s letters (``LATIN``, ``CYRILLIC``, ``GREEK``, ...), from
    their Unicode names."""
    found = set()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            found.add(name.split(" ")[0] if name else "UNKNOWN")
    return found
