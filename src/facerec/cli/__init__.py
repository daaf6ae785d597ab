"""``facerec`` command line: a thin edge that parses, calls the library, formats, maps errors.

One module per command group; each adds its parser and runs its command. Exit codes: 0 success;
1 some inputs failed (the rest were processed); 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import sys

from facerec.cli.common import EXIT_ERROR, NO_FACE_REMEDY
from facerec.errors import FacerecError, NoFaceError
from facerec.extras import missing_extra
from facerec.text import printable


def build_parser() -> argparse.ArgumentParser:
    from facerec.cli import data, evaluate, infer, ingest, people, serve, store, train, verify

    parser = argparse.ArgumentParser(prog="facerec", description="Face recognition with evidence.")
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
