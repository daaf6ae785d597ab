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
from contextlib import contextmanager
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

    rows = []
    for name, d in load("pairs_*.json"):
        used.add(name)
        tar = d.get("tar_at_far") or {}
        rows.append(
            [
                f"`{name}`",
                f"{pct(d.get('accuracy_mean'))} ± {pct(d.get('accuracy_std'))}",
                num(d.get("auc"), 4),
                pct(d.get("eer")),
                pct(tar.get("0.01")),
                pct(tar.get("0.001")),
                num(d.get("images")),
                code(pairs_command(d)) + " (from the JSON's options)",
                "not recorded" + (" (H200, from its name)" if "h200" in name else ""),
            ]
        )
    out += ["## LFW View 2 pairs (`facerec evaluate pairs`)", ""]
    out += table(
        ["file", "accuracy", "AUC", "EER", "TAR @ FAR 1e-2", "TAR @ 1e-3", "images", "command", "machine"], rows
    )

    rows = []
    for name, d in load("fused_*.json"):
        used.add(name)
        for r in d.get("rows", []):
            what = r.get("embedder", "")
            if r.get("weight") is not None:
                what += f" (weight {r['weight']})"
            rows.append(
                [
                    f"`{name}`",
                    what,
                    f"{r.get('detector', '')} / {r.get('alignment', '')}",
                    "yes" if r.get("mean_sub") else "no",
                    f"{r.get('accuracy')}% ± {r.get('std')}",
                    num(r.get("auc"), 4),
                    machine(d),
                    code(d.get("command")),
                ]
            )
    out += ["## Fused embedders on LFW pairs (`bench/fused.py`)", ""]
    out += table(
        ["file", "embedder", "detector / alignment", "mean subtracted", "accuracy", "AUC", "machine", "command"], rows
    )

    rows = []
    for name, d in load("pipeline_*.json"):
        used.add(name)
        stages = ", ".join(f"{k} {num(v, 1)}" for k, v in (d.get("stages") or {}).items())
        rows.append(
            [
                f"`{name}`",
                d.get("device", ""),
                d.get("detector", "mtcnn"),
                d.get("precision", ""),
                num(d.get("images")),
                num(d.get("baseline_img_s"), 1),
                f"**{num(d.get('img_s'), 1)}**",
                f"{num(d.get('speedup'), 2)}×",
                stages,
                machine(d),
                "not recorded",
            ]
        )
    out += ["## Throughput of the pipeline (`bench/pipeline.py`), images per second", ""]
    out += table(
        [
            "file",
            "device",
            "detector",
            "precision",
            "images",
            "original's way",
            "end to end",
            "speed-up",
            "stages",
            "machine",
            "command",
        ],
        rows,
    )

    rows = []
    for name, d in load("detectors_*.json"):
        used.add(name)
        for r in d.get("rows", []):
            rows.append(
                [
                    f"`{name}`",
                    num(d.get("images")),
                    r.get("detector"),
                    num(r.get("img_s"), 1),
                    f"{num(r.get('x_mtcnn'), 2)}×",
                    machine(d),
                    "not recorded",
                ]
            )
    out += ["## Detection alone (`bench/detectors.py`)", ""]
    out += table(["file", "images", "detector", "img/s", "× batched MTCNN", "machine", "command"], rows)

    rows = []
    for name, d in load("verify_*.json"):
        used.add(name)
        p = d.get("pipeline") or {}
        what = f"{p.get('embedder', '')} / {p.get('detector', '')}"
        for r in d.get("rows", []):
            rows.append(
                [
                    f"`{name}`",
                    what,
                    r.get("far_promised"),
                    r.get("threshold"),
                    r.get("accepted_of_mismatched"),
                    pct(r.get("tar"), 1),
                    pct(r.get("tar_reference"), 1),
                    machine(d),
                    code(d.get("command")),
                ]
            )
    out += ["## Verification at a promised FAR (`bench/verify_far.py`, LFW View 2)", ""]
    out += table(
        [
            "file",
            "pipeline",
            "FAR promised",
            "threshold",
            "mismatched accepted",
            "TAR",
            "TAR the reference predicts",
            "machine",
            "command",
        ],
        rows,
    )

    rows = []
    for name, d in load("open_set_sizes_*.json"):
        used.add(name)
        p = d.get("pipeline") or {}
        what = f"{p.get('embedder', '')} / {p.get('detector', '')}"
        for r in d.get("rows", []):
            rows.append(
                [
                    f"`{name}`",
                    what,
                    r.get("rule"),
                    r.get("photos"),
                    r.get("people"),
                    pct(r.get("fpir")),
                    pct(r.get("dir"), 1),
                    num(r.get("threshold"), 3),
                    r.get("source", ""),
                    machine(d),
                    "not recorded",
                ]
            )
    out += [
        "## Open set by gallery size (`facerec evaluate open-set --gallery-sizes ...`)",
        "",
        "Strangers named (FPIR, promised: 1%) and known people named right (DIR), mean of the draws.",
        "",
    ]
    out += table(
        [
            "file",
            "pipeline",
            "rule",
            "photos each",
            "people",
            "strangers named",
            "known named right",
            "threshold",
            "threshold from",
            "machine",
            "command",
        ],
        rows,
    )

    rows = []
    for name, d in load("open_set_*.json"):
        if name in used:
            continue
        used.add(name)
        dirs = d.get("dir_at_fpir") or {}
        dep = d.get("deployed") or {}
        rows.append(
            [
                f"`{name}`",
                f"{d.get('embedder')} / {d.get('detector')}",
                num(d.get("known_people")),
                num(d.get("trials")),
                pct(dirs.get("0.01")),
                pct(dirs.get("0.001")),
                pct(dep.get("impostors_unknown")),
                pct(dep.get("known_recognised")),
                machine(d),
                "not recorded",
            ]
        )
    out += ["## Open set, LFW NIST-style (`facerec evaluate open-set`)", ""]
    out += table(
        [
            "file",
            "pipeline",
            "known people",
            "trials",
            "DIR @ FPIR 1%",
            "DIR @ 0.1%",
            "strangers unknown (train+infer)",
            "known named right",
            "machine",
            "command",
        ],
        rows,
    )

    rows = []
    for name, d in load("search_*.json"):
        used.add(name)
        for r in d.get("rows", []):
            params = ", ".join(f"{k}={v}" for k, v in (r.get("params") or {}).items())
            rows.append(
                [
                    f"`{name}`",
                    r.get("gallery"),
                    num(r.get("size")),
                    f"{r.get('backend')}" + (f" ({params})" if params else ""),
                    num(r.get("recall_at_1"), 3),
                    num(r.get("p50_ms"), 2),
                    num(r.get("p99_ms"), 2),
                    num(r.get("qps"), 0),
                    num(r.get("build_s"), 1),
                    machine(d),
                    "not recorded",
                ]
            )
    out += ["## 1:N search (`bench/search.py`)", ""]
    out += table(
        [
            "file",
            "gallery",
            "faces",
            "backend",
            "recall@1",
            "p50 ms",
            "p99 ms",
            "batched q/s",
            "build s",
            "machine",
            "command",
        ],
        rows,
    )

    rows = []
    for name, d in load("store_*.json"):
        used.add(name)
        cmds = d.get("commands") or {}
        for r in d.get("rows", []):
            backend = r.get("backend", "")
            cmd = next((c for k, c in cmds.items() if backend in k), None)
            rows.append(
                [
                    f"`{name}`",
                    backend,
                    num(r.get("size")),
                    f"{num(r.get('enrol_p50_ms'))} / {num(r.get('enrol_p99_ms'))}",
                    f"{num(r.get('identify_p50_ms'))} / {num(r.get('identify_p99_ms'))}",
                    num(r.get("recall_at_1"), 3),
                    machine(d),
                    code(cmd),
                ]
            )
    out += ["## Stores (`bench/store.py`)", ""]
    out += table(
        ["file", "store", "faces", "enrol p50 / p99 ms", "identify p50 / p99 ms", "recall@1", "machine", "command"],
        rows,
    )

    rows = []
    for name, d in load("video_*.json"):
        used.add(name)
        for r in d.get("rows", []):
            rows.append(
                [
                    f"`{name}`",
                    f"{r.get('height')}p",
                    r.get("every"),
                    r.get("precision"),
                    num(r.get("fps")),
                    num(r.get("real_time")),
                    r.get("tracks"),
                    num(r.get("per_frame_fps")),
                    machine(d),
                    code(d.get("command")),
                ]
            )
    out += ["## Video (`bench/video.py`)", ""]
    out += table(
        [
            "file",
            "height",
            "every",
            "precision",
            "frames/s",
            "× real time",
            "tracks",
            "per frame, no tracker",
            "machine",
            "command",
        ],
        rows,
    )

    rows = []
    for name, d in load("ingest_cpu*.json"):
        used.add(name)
        for r in d.get("rows", []):
            rows.append(
                [
                    f"`{name}`",
                    r.get("run"),
                    num(r.get("images")),
                    num(r.get("steady_img_s"), 1),
                    num(r.get("wall_img_s"), 1),
                    num(r.get("first_batch_s"), 1),
                    machine(d),
                    "not recorded",
                ]
            )
    out += ["## Ingest (`bench/ingest.py`)", ""]
    out += table(
        ["file", "run", "images", "steady img/s", "wall img/s", "first batch stored after s", "machine", "command"],
        rows,
    )

    rows = []
    for name, d in load("cluster_*.json"):
        used.add(name)
        if "rows" in d:
            for r in d["rows"]:
                rows.append(
                    [
                        f"`{name}`",
                        num(r.get("faces")),
                        r.get("method", ""),
                        f"{num(r.get('seconds'), 1)} s (k-NN graph {num(r.get('graph_seconds'), 1)} s)",
                        f"{num(r.get('pairwise_f1'), 4)} / {num(r.get('bcubed_f1'), 4)}",
                        machine(d),
                        code(d.get("command")),
                    ]
                )
        else:
            pw, bc = d.get("pairwise") or {}, d.get("bcubed") or {}
            rows.append(
                [
                    f"`{name}`",
                    num(d.get("faces")),
                    f"{d.get('algorithm', '')}, threshold {num(d.get('threshold'), 4)}",
                    f"{num(d.get('seconds'), 1)} s",
                    f"{num(pw.get('f1'), 3)} / {num(bc.get('f1'), 3)}",
                    machine(d),
                    code(d.get("command")),
                ]
            )
    out += ["## Clustering (`bench/cluster.py`)", ""]
    out += table(["file", "faces", "algorithm", "time", "pairwise / BCubed F1", "machine", "command"], rows)

    rows = []
    for path in sorted(REPORTED.glob("*.json")):
        if path.name in used:
            continue
        try:
            d = json.loads(path.read_text())
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        scalars = ", ".join(
            f"{k} {num(v, 4) if isinstance(v, float) else v}"
            for k, v in d.items()
            if isinstance(v, (int, float, str)) and k not in ("command",) and len(str(v)) < 60
        )
        rows.append([f"`{path.name}`", scalars, machine(d), code(d.get("command"))])
    out += ["## Other recorded files", "", "Their scalar fields; the prose on [Benchmarks](index.md) reads them.", ""]
    out += table(["file", "recorded", "machine", "command"], rows)
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
