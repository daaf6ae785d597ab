"""``facerec`` command line: a thin edge that parses, calls the library, formats, maps errors.

One module per command group; each adds its parser and runs its command. Exit codes: 0 success;
1 some inputs failed (the rest were processed); 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import difflib
import sys

from facerec.cli.common import EXIT_ERROR, NO_FACE_REMEDY
from facerec.errors import FacerecError, NoFaceError
from facerec.extras import missing_extra
from facerec.text import printable


class Parser(argparse.ArgumentParser):
    """argparse, with a "did you mean" for a mistyped command or flag (subcommands' parsers are
    made by ``add_parser``, of the same class)."""

    def error(self, message: str):
        if message.startswith("unrecognized arguments:"):
            message += did_you_mean(message.split(":", 1)[1].split(), self._option_string_actions)
        elif "invalid choice:" in message:
            wrong = message.split("invalid choice:", 1)[1].split("'")[1:2]
            choices = next((a.choices for a in self._actions if isinstance(a.choices, dict)), {})
            message += did_you_mean(wrong, choices)
        super().error(message)

    def parse_args(self, args=None, namespace=None):
        # a flag the subcommand does not know is said by the subcommand's own parser, which can
        # suggest one of its flags (the top parser knows only the command names)
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            command = getattr(parsed, "command", None)
            sub = next(
                (a.choices[command] for a in self._actions if isinstance(a.choices, dict) and command in a.choices),
                self,
            )
            sub.error("unrecognized arguments: " + " ".join(unknown))
        return parsed


def did_you_mean(words: list[str], known) -> str:
    """ "; did you mean --topk?" for the first word that is close to a known one, else ""."""
    for word in words:
        flag = word.split("=", 1)[0]
        close = difflib.get_close_matches(flag, list(known), n=1, cutoff=0.6)
        if close:
            return f" (did you mean {close[0]}?)"
    return ""


def check_paths(args) -> None:
    """Model-file flags that name something missing are refused before anything loads."""
    from pathlib import Path

    from facerec.errors import InputError

    folder = getattr(args, "weights_dir", None)
    if folder and not Path(folder).expanduser().is_dir():
        raise InputError(f"--weights-dir {folder}: no such folder")
    weights = getattr(args, "weights", None)
    if weights and not Path(weights).expanduser().is_file():
        raise InputError(f"--weights {weights}: no such file")


def build_parser() -> argparse.ArgumentParser:
    from facerec.cli import data, evaluate, infer, ingest, people, serve, store, train, verify

    parser = Parser(prog="facerec", description="Face recognition with evidence.")
    sub = parser.add_subparsers(dest="command", required=True)
    data.add_parsers(sub)
    train.add_parser(sub)
    infer.add_parser(sub)
    verify.add_parser(sub)
    evaluate.add_parsers(sub)
    serve.add_parser(sub)
    store.add_parsers(sub)
    ingest.add_parser(sub)
    people.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage error (or --help)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        check_paths(args)
        return args.func(args)
    except NoFaceError as exc:
        print(f"error: {printable(str(exc))} ({NO_FACE_REMEDY})", file=sys.stderr)
        return EXIT_ERROR
    except FacerecError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except ImportError as exc:  # an optional part asked for without its extra: name the extra
        found = missing_extra(exc)
        if found is None:
            raise
        print(f"error: {found}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
