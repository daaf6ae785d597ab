"""MkDocs hooks: pages generated at build time, so that they cannot drift from the code and data.

- ``reference/cli/<command>.md``: ``facerec <command> --help`` (and every nested subcommand's
  ``--help``), rendered from the argparse parser the ``facerec`` command itself builds.
- ``benchmarks/recorded.md``: tables built from ``bench/reported/*.json``, each row naming the
  JSON file, the machine and the command recorded in it.

Wired in mkdocs.yml (``hooks: [docs/hooks.py]``); ``make docs`` builds the site.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
REPORTED = ROOT / "bench" / "reported"
# The width argparse wraps help text to, here and in tests/integration/test_docs.py.
HELP_COLUMNS = "100"
CLI_NAV_TITLE = "CLI reference"


# ---------------------------------------------------------------------------------------- CLI


@contextmanager
def help_width():
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


def subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order --help lists them."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return found


def cli_commands() -> list[tuple[list[str], str, str]]:
    """([command, subcommand...], one-line help, --help text) for every command, depth first."""
    from facerec.cli import build_parser

    out = []

    def walk(path: list[str], summary: str, parser: argparse.ArgumentParser) -> None:
        out.append((path, summary, parser.format_help()))
        for name, helptext, sub in subparsers(parser):
            walk([*path, name], helptext, sub)

    with help_width():
        for name, helptext, sub in subparsers(build_parser()):
            walk([name], helptext, sub)
    return out


def cli_pages() -> dict[str, str]:
    """path under docs/ -> markdown: an index and one page per top-level command."""
    commands = cli_commands()
    pages: dict[str, str] = {}
    index = [
        "# CLI reference",
        "",
        "Generated at build time from the parser `facerec` itself uses (`facerec <command> --help`,",
        f"wrapped at {HELP_COLUMNS} columns), so it always matches the installed version.",
        "Exit codes: 0 success; 1 some inputs failed (the rest were processed); 2 bad usage or input.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for path, summary, _ in commands:
        if len(path) == 1:
            index.append(f"| [`facerec {path[0]}`]({path[0]}.md) | {summary} |")
    pages["reference/cli/index.md"] = "\n".join(index) + "\n"
    for top in [p[0] for p, _, _ in commands if len(p) == 1]:
        lines = []
        for path, summary, text in commands:
            if path[0] != top:
                continue
            heading = "#" * len(path)
            lines += [f"{heading} facerec {' '.join(path)}", ""]
            if summary:
                lines += [summary[0].upper() + summary[1:] + ".", ""]
            lines += ["```text", text.rstrip("\n"), "```", ""]
        pages[f"reference/cli/{top}.md"] = "\n".join(lines)
    return pages


# ---------------------------------------------------------------------------------- benchmarks


def machine(d: dict) -> str:
    m = d.get("machine")
    if not isinstance(m, dict):
        return "not recorded"
    parts = [f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"]
    if m.get("gpu"):
        parts.insert(0, m["gpu"])
    if m.get("torch"):
        parts.append(f"torch {m['torch']}")
    return "; ".join(parts)


def code(text: str | None) -> str:
    if not text:
        return "not recorded"
    return "`" + str(text).replace("|", "\\|").replace("`", "'") + "`"


def pct(x, digits=2) -> str:
    return "" if x is None else f"{100 * x:.{digits}f}%"


def num(x, digits=2) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("\n", " ") for c in r) + " |" for r in rows]
    return out + [""]


def load(pattern: str) -> list[tuple[str, dict]]:
    found = []
    for path in sorted(REPORTED.glob(pattern)):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append((path.name, data))
    return found


def pairs_command(d: dict) -> str:
    """The `facerec evaluate pairs` options recorded in a pairs JSON, written as the command."""
    cmd = f"facerec evaluate pairs --embedder {d.get('embedder')} --detector {d.get('detector')}"
    if len(d.get("fold_accuracy") or []) == 1:
        cmd += " --folds 1"
    if d.get("precision") and d.get("precision") != "fp32":
        cmd += f" --precision {d['precision']}"
    if d.get("flip"):
        cmd += " --flip"
    if d.get("subtract_mean"):
        cmd += " --subtract-mean"
    if d.get("metric") and d.get("metric") != "euclidean":
        cmd += f" --metric {d['metric']}"
    return cmd


def pipeline_of(d: dict) -> str:
    p = d.get("pipeline") or {}
    return f"{p.get('embedder', '')} / {p.get('detector', '')}"


def fused_embedder(r: dict) -> str:
    what = r.get("embedder", "")
    if r.get("weight") is not None:
        what += f" (weight {r['weight']})"
    return what


def search_backend(r: dict) -> str:
    params = ", ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
    return f"{r.get('backend')}" + (f" ({params})" if params else "")


def store_command(r: dict, d: dict) -> str:
    """A store file records a command per store; the row's is the one whose key names its backend."""
    backend = r.get("backend", "")
    return code(next((c for k, c in (d.get("commands") or {}).items() if backend in k), None))


def cluster_rows(d: dict) -> list[dict]:
    """A clustering file holds either rows, one per method, or one run; both as the table's cells."""
    if "rows" in d:
        return [
            {
                "faces": r.get("faces"),
                "algorithm": r.get("method", ""),
                "time": f"{num(r.get('seconds'), 1)} s (k-NN graph {num(r.get('graph_seconds'), 1)} s)",
                "f1": f"{num(r.get('pairwise_f1'), 4)} / {num(r.get('bcubed_f1'), 4)}",
            }
            for r in d["rows"]
        ]
    pw, bc = d.get("pairwise") or {}, d.get("bcubed") or {}
    return [
        {
            "faces": d.get("faces"),
            "algorithm": f"{d.get('algorithm', '')}, threshold {num(d.get('threshold'), 4)}",
            "time": f"{num(d.get('seconds'), 1)} s",
            "f1": f"{num(pw.get('f1'), 3)} / {num(bc.get('f1'), 3)}",
        }
    ]


def scalars(d: dict) -> str:
    return ", ".join(
        f"{k} {num(v, 4) if isinstance(v, float) else v}"
        for k, v in d.items()
        if isinstance(v, (int, float, str)) and k not in ("command",) and len(str(v)) < 60
    )


def whole_file(d: dict) -> list[dict]:
    return [d]


def listed_rows(d: dict) -> list[dict]:
    return d.get("rows", [])


# A cell is got from (row, the file's JSON, the file's name); a row is the file itself for tables
# of one row per file. Every table starts with the file's name.
Cell = Callable[[dict, dict, str], object]
MACHINE: tuple[str, Cell] = ("machine", lambda r, d, name: machine(d))
COMMAND: tuple[str, Cell] = ("command", lambda r, d, name: code(d.get("command")))
NO_COMMAND: tuple[str, Cell] = ("command", lambda r, d, name: "not recorded")


@dataclass(frozen=True)
class Table:
    """One table of the recorded page: the files it lists, its heading and its columns."""

    glob: str
    title: str
    columns: list[tuple[str, Cell]]
    rows: Callable[[dict], list[dict]] = listed_rows
    note: str | None = None


TABLES = [
    Table(
        "pairs_*.json",
        "LFW View 2 pairs (`facerec evaluate pairs`)",
        [
            ("accuracy", lambda r, d, name: f"{pct(r.get('accuracy_mean'))} ± {pct(r.get('accuracy_std'))}"),
            ("AUC", lambda r, d, name: num(r.get("auc"), 4)),
            ("EER", lambda r, d, name: pct(r.get("eer"))),
            ("TAR @ FAR 1e-2", lambda r, d, name: pct((r.get("tar_at_far") or {}).get("0.01"))),
            ("TAR @ 1e-3", lambda r, d, name: pct((r.get("tar_at_far") or {}).get("0.001"))),
            ("images", lambda r, d, name: num(r.get("images"))),
            ("command", lambda r, d, name: code(pairs_command(r)) + " (from the JSON's options)"),
            ("machine", lambda r, d, name: "not recorded" + (" (H200, from its name)" if "h200" in name else "")),
        ],
        rows=whole_file,
    ),
    Table(
        "fused_*.json",
        "Fused embedders on LFW pairs (`bench/fused.py`)",
        [
            ("embedder", lambda r, d, name: fused_embedder(r)),
            ("detector / alignment", lambda r, d, name: f"{r.get('detector', '')} / {r.get('alignment', '')}"),
            ("mean subtracted", lambda r, d, name: "yes" if r.get("mean_sub") else "no"),
            ("accuracy", lambda r, d, name: f"{r.get('accuracy')}% ± {r.get('std')}"),
            ("AUC", lambda r, d, name: num(r.get("auc"), 4)),
            MACHINE,
            COMMAND,
        ],
    ),
    Table(
        "pipeline_*.json",
        "Throughput of the pipeline (`bench/pipeline.py`), images per second",
        [
            ("device", lambda r, d, name: r.get("device", "")),
            ("detector", lambda r, d, name: r.get("detector", "mtcnn")),
            ("precision", lambda r, d, name: r.get("precision", "")),
            ("images", lambda r, d, name: num(r.get("images"))),
            ("original's way", lambda r, d, name: num(r.get("baseline_img_s"), 1)),
            ("end to end", lambda r, d, name: f"**{num(r.get('img_s'), 1)}**"),
            ("speed-up", lambda r, d, name: f"{num(r.get('speedup'), 2)}×"),
            ("stages", lambda r, d, name: ", ".join(f"{k} {num(v, 1)}" for k, v in (r.get("stages") or {}).items())),
            MACHINE,
            NO_COMMAND,
        ],
        rows=whole_file,
    ),
    Table(
        "detectors_*.json",
        "Detection alone (`bench/detectors.py`)",
        [
            ("images", lambda r, d, name: num(d.get("images"))),
            ("detector", lambda r, d, name: r.get("detector")),
            ("img/s", lambda r, d, name: num(r.get("img_s"), 1)),
            ("× batched MTCNN", lambda r, d, name: f"{num(r.get('x_mtcnn'), 2)}×"),
            MACHINE,
            NO_COMMAND,
        ],
    ),
    Table(
        "verify_*.json",
        "Verification at a promised FAR (`bench/verify_far.py`, LFW View 2)",
        [
            ("pipeline", lambda r, d, name: pipeline_of(d)),
            ("FAR promised", lambda r, d, name: r.get("far_promised")),
            ("threshold", lambda r, d, name: r.get("threshold")),
            ("mismatched accepted", lambda r, d, name: r.get("accepted_of_mismatched")),
            ("TAR", lambda r, d, name: pct(r.get("tar"), 1)),
            ("TAR the reference predicts", lambda r, d, name: pct(r.get("tar_reference"), 1)),
            MACHINE,
            COMMAND,
        ],
    ),
    Table(
        "open_set_sizes_*.json",
        "Open set by gallery size (`facerec evaluate open-set --gallery-sizes ...`)",
        [
            ("pipeline", lambda r, d, name: pipeline_of(d)),
            ("rule", lambda r, d, name: r.get("rule")),
            ("photos each", lambda r, d, name: r.get("photos")),
            ("people", lambda r, d, name: r.get("people")),
            ("strangers named", lambda r, d, name: pct(r.get("fpir"))),
            ("known named right", lambda r, d, name: pct(r.get("dir"), 1)),
            ("threshold", lambda r, d, name: num(r.get("threshold"), 3)),
            ("threshold from", lambda r, d, name: r.get("source", "")),
            MACHINE,
            NO_COMMAND,
        ],
        note="Strangers named (FPIR, promised: 1%) and known people named right (DIR), mean of the draws.",
    ),
    Table(
        "open_set_*.json",
        "Open set, LFW NIST-style (`facerec evaluate open-set`)",
        [
            ("pipeline", lambda r, d, name: f"{r.get('embedder')} / {r.get('detector')}"),
            ("known people", lambda r, d, name: num(r.get("known_people"))),
            ("trials", lambda r, d, name: num(r.get("trials"))),
            ("DIR @ FPIR 1%", lambda r, d, name: pct((r.get("dir_at_fpir") or {}).get("0.01"))),
            ("DIR @ 0.1%", lambda r, d, name: pct((r.get("dir_at_fpir") or {}).get("0.001"))),
            (
                "strangers unknown (train+infer)",
                lambda r, d, name: pct((r.get("deployed") or {}).get("impostors_unknown")),
            ),
            ("known named right", lambda r, d, name: pct((r.get("deployed") or {}).get("known_recognised"))),
            MACHINE,
            NO_COMMAND,
        ],
        rows=whole_file,
    ),
    Table(
        "search_*.json",
        "1:N search (`bench/search.py`)",
        [
            ("gallery", lambda r, d, name: r.get("gallery")),
            ("faces", lambda r, d, name: num(r.get("size"))),
            ("backend", lambda r, d, name: search_backend(r)),
            ("recall@1", lambda r, d, name: num(r.get("recall_at_1"), 3)),
            ("p50 ms", lambda r, d, name: num(r.get("p50_ms"), 2)),
            ("p99 ms", lambda r, d, name: num(r.get("p99_ms"), 2)),
            ("batched q/s", lambda r, d, name: num(r.get("qps"), 0)),
            ("build s", lambda r, d, name: num(r.get("build_s"), 1)),
            MACHINE,
            NO_COMMAND,
        ],
    ),
    Table(
        "store_*.json",
        "Stores (`bench/store.py`)",
        [
            ("store", lambda r, d, name: r.get("backend", "")),
            ("faces", lambda r, d, name: num(r.get("size"))),
            ("enrol p50 / p99 ms", lambda r, d, name: f"{num(r.get('enrol_p50_ms'))} / {num(r.get('enrol_p99_ms'))}"),
            (
                "identify p50 / p99 ms",
                lambda r, d, name: f"{num(r.get('identify_p50_ms'))} / {num(r.get('identify_p99_ms'))}",
            ),
            ("recall@1", lambda r, d, name: num(r.get("recall_at_1"), 3)),
            MACHINE,
            ("command", lambda r, d, name: store_command(r, d)),
        ],
    ),
    Table(
        "video_*.json",
        "Video (`bench/video.py`)",
        [
            ("height", lambda r, d, name: f"{r.get('height')}p"),
            ("every", lambda r, d, name: r.get("every")),
            ("precision", lambda r, d, name: r.get("precision")),
            ("frames/s", lambda r, d, name: num(r.get("fps"))),
            ("× real time", lambda r, d, name: num(r.get("real_time"))),
            ("tracks", lambda r, d, name: r.get("tracks")),
            ("per frame, no tracker", lambda r, d, name: num(r.get("per_frame_fps"))),
            MACHINE,
            COMMAND,
        ],
    ),
    Table(
        "ingest_cpu*.json",
        "Ingest (`bench/ingest.py`)",
        [
            ("run", lambda r, d, name: r.get("run")),
            ("images", lambda r, d, name: num(r.get("images"))),
            ("steady img/s", lambda r, d, name: num(r.get("steady_img_s"), 1)),
            ("wall img/s", lambda r, d, name: num(r.get("wall_img_s"), 1)),
            ("first batch stored after s", lambda r, d, name: num(r.get("first_batch_s"), 1)),
            MACHINE,
            NO_COMMAND,
        ],
    ),
    Table(
        "cluster_*.json",
        "Clustering (`bench/cluster.py`)",
        [
            ("faces", lambda r, d, name: num(r["faces"])),
            ("algorithm", lambda r, d, name: r["algorithm"]),
            ("time", lambda r, d, name: r["time"]),
            ("pairwise / BCubed F1", lambda r, d, name: r["f1"]),
            MACHINE,
            COMMAND,
        ],
        rows=cluster_rows,
    ),
    # Last: every JSON file no table above has listed.
    Table(
        "*.json",
        "Other recorded files",
        [("recorded", lambda r, d, name: scalars(r)), MACHINE, COMMAND],
        rows=whole_file,
        note="Their scalar fields; the prose on [Benchmarks](index.md) reads them.",
    ),
]


def render(spec: Table, used: set[str]) -> list[str]:
    """The table's heading and rows; a file already listed by an earlier table is left out."""
    rows = []
    for name, d in load(spec.glob):
        if name in used:
            continue
        used.add(name)
        for r in spec.rows(d):
            rows.append([f"`{name}`"] + [cell(r, d, name) for _, cell in spec.columns])
    out = [f"## {spec.title}", ""] + ([spec.note, ""] if spec.note else [])
    return out + table(["file"] + [header for header, _ in spec.columns], rows)


def recorded_page() -> str:
    used: set[str] = set()
    out = [
        "# Recorded results",
        "",
        "Every table on this page is built at documentation build time from the JSON files in",
        "`bench/reported/`, as the benchmark commands wrote them; nothing here is typed by hand.",
        "Each row names its file, the machine recorded in it and its command. Where the JSON does not",
        "record the command, the row says so (the prose on [Benchmarks](index.md) gives it), except",
        "for the LFW pairs files, whose command is written from the options the JSON records.",
        "",
        "The GPU rows (NVIDIA H200) are from facerec 0.1 and have not been re-measured since.",
        "",
    ]
    for spec in TABLES:
        out += render(spec, used)
    others = sorted(p.name for p in REPORTED.iterdir() if p.suffix != ".json")
    if others:
        out += ["Also in `bench/reported/`: " + ", ".join(f"`{n}`" for n in others) + "."]
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------------- hooks


def on_config(config):
    """Put one nav entry per top-level command under the CLI reference."""
    tops = [p[0] for p, _, _ in cli_commands() if len(p) == 1]
    entries = [{"Overview": "reference/cli/index.md"}] + [{f"facerec {t}": f"reference/cli/{t}.md"} for t in tops]

    def fill(nav):
        for item in nav or []:
            if isinstance(item, dict):
                for key, value in item.items():
                    if key == CLI_NAV_TITLE:
                        item[key] = entries
                    elif isinstance(value, list):
                        fill(value)

    fill(config["nav"])
    return config


def on_files(files, config):
    generated = {**cli_pages(), "benchmarks/recorded.md": recorded_page()}
    for path, content in generated.items():
        files.append(File.generated(config, path, content=content))
    return files
