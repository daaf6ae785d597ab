"""CPU end to end in the core install (no torch) against another commit in the full install, same run.

Each variant runs the same LFW images through ``facerec.Pipeline`` (decode, detect, crop, embed;
no content cache) in a process of its own; the variants take turns, round after round, so that a
noisy machine slows them alike. The core variant is this tree with every optional module made
unimportable (tests/without/sitecustomize.py), which is what ``pip install .`` gives; the baseline
is the ``--baseline`` commit's source (checked out into a temporary worktree) with torch installed.

    python bench/core_speed.py --baseline e980acd --limit 400 --rounds 3 --json bench/reported/core_speed.json

With ``--install full`` this tree runs in the full install too: a change measured against the
commit before it (``--baseline 44a3484 --install full``: the retry for faces that fill the frame).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, print_table, write_json  # noqa: E402

# what a variant's process runs: N images through the pipeline, once to load and warm, then timed
RUN = """
import json, sys, time
from pathlib import Path
paths = json.loads(Path(sys.argv[1]).read_text())
detector = sys.argv[2]
t0 = time.perf_counter()
from facerec.pipeline import Pipeline
pipe = Pipeline.create(embedder="facenet-casia", detector=detector, device="cpu")
pipe.run(paths[:8])
loaded = time.perf_counter() - t0
t = time.perf_counter()
results = pipe.run(paths)
seconds = time.perf_counter() - t
faces = sum(len(r.faces) for r in results)
try:
    import torch  # noqa: F401
    has_torch = True
except ImportError:
    has_torch = False
print(json.dumps({"seconds": seconds, "faces": faces, "load_s": loaded, "torch": has_torch}))
"""


def lfw_paths(limit: int) -> list[str]:
    for d in (
        Path(os.environ.get("SCIKIT_LEARN_DATA", "")) / "lfw_home" / "lfw_funneled",
        ROOT.parent / "shared" / "data" / "lfw_home" / "lfw_funneled",
    ):
        if d.is_dir():
            paths = sorted(str(p) for p in d.glob("*/*.jpg"))
            step = max(1, len(paths) // limit)  # spread over all of LFW, not the first few names
            return paths[::step][:limit]
    raise SystemExit("no LFW images found: set SCIKIT_LEARN_DATA")


def run_variant(src: Path, env_extra: dict, paths_file: Path, detector: str) -> dict:
    env = {**os.environ, **env_extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env_extra.get("PYTHONPATH"), str(src)]))
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(paths_file), detector], capture_output=True, text=True, env=env, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"{src} ({detector}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="e980acd", help="the commit measured in the full install")
    ap.add_argument("--detectors", default="mtcnn,yunet")
    ap.add_argument("--limit", type=int, default=400, help="LFW images, spread over the whole set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--install", choices=("core", "full"), default="core", help="how this tree runs: core (no torch) or full"
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from facerec.extras import MODULE_EXTRAS

    paths = lfw_paths(args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths_file = tmp / "paths.json"
        paths_file.write_text(json.dumps(paths))
        base = tmp / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            home = {"FACEREC_HOME": os.environ.get("FACEREC_HOME", str(tmp / "home"))}
            without = {"PYTHONPATH": str(ROOT / "tests" / "without"), "FACEREC_WITHOUT": ",".join(MODULE_EXTRAS)}
            variants = {
                f"{args.baseline} (full install)": (base / "src", home),
                "this tree (core install: no torch)" if args.install == "core" else "this tree (full install)": (
                    ROOT / "src",
                    {**home, **without} if args.install == "core" else home,
                ),
            }
            times: dict[tuple, list] = {}
            for r in range(args.rounds):
                for detector in args.detectors.split(","):
                    for name, (src, env) in variants.items():
                        out = run_variant(src, env, paths_file, detector)
                        times.setdefault((detector, name), []).append(out)
                        print(
                            f"round {r + 1} {detector:<6} {name}: {len(paths) / out['seconds']:.1f} img/s, "
                            f"{out['faces']} faces, torch {'yes' if out['torch'] else 'no'}",
                            file=sys.stderr,
                        )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    rows = []
    for detector in args.detectors.split(","):
        base_rate = None
        for name in variants:
            runs = times[(detector, name)]
            rate = statistics.median(len(paths) / o["seconds"] for o in runs)
            base_rate = base_rate or rate
            rows.append(
                {
                    "detector": detector,
                    "variant": name,
                    "img/s (median)": rate,
                    "vs baseline": rate / base_rate,
                    "faces": runs[0]["faces"],
                    "load s": statistics.median(o["load_s"] for o in runs),
                    "torch": "yes" if runs[0]["torch"] else "no",
                }
            )
    print_table(rows, list(rows[0]))
    if args.json:
        write_json(
            args.json,
            {
                "command": "python bench/core_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "machine": machine(),
                "images": len(paths),
                "rounds": args.rounds,
                "rows": rows,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
