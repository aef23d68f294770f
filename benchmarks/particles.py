"""Training and inference from a particle stack larger than a batch: throughput and memory.

Usage: python benchmarks/particles.py [--gigabytes 8] [--steps 300] [--folder DIR] [--json out.json]

(a) `toolkit simulate` writes a stack of 128x128 particles of the F (CTF, SNR 1) of about
    --gigabytes, with its STAR file;
(b) `toolkit run` trains the orientation estimator of recipes/f_orientation.yaml from it
    (`data.type: particles`, Fourier-cropped to 64x64) for --steps steps, and again from a STAR
    file of its first 2,048 particles (128 MB, which the page cache holds after the first pass:
    the in-memory baseline, run in the same session); the ratio of their samples per second;
(c) `toolkit infer` of the trained run over the whole stack: particles per second;
each command's peak anonymous memory (`RssAnon` of /proc/PID/status, polled every 0.1 s: a
memory map's page cache is resident without being the program's own). The page cache is
dropped before each streamed command where the machine allows it (root), and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import starfile

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "f_orientation.yaml"
SIZE, CROP, SUBSET = 128, 64, 2048


def rss_anon_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def drop_page_cache() -> bool:
    """Drop the page cache, so a stack is read from disk; False where the machine does not allow it."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def measured(args: list[str]) -> dict:
    """Run a command; its wall time and peak RssAnon (GB)."""
    start, peak = time.perf_counter(), 0
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while process.poll() is None:
        peak = max(peak, rss_anon_kib(process.pid))
        time.sleep(0.1)
    output = process.stdout.read()
    if process.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{output[-3000:]}")
    return {"seconds": time.perf_counter() - start, "rss_anon_gb": peak / 2**20, "output": output}


def toolkit(*args) -> list[str]:
    return [sys.executable, "-m", "toolkit", *map(str, args)]


def train(star: Path, out: Path, steps: int) -> dict:
    data = f"data={{type: particles, star: {star}, image_size: {CROP}, validation_size: 256}}"
    sets = [data, "train.epochs=1", f"train.steps_per_epoch={steps}"]
    result = measured(toolkit("run", RECIPE, "--out", out, *[a for s in sets for a in ("--set", s)]))
    summary = json.loads((out / "summary.json").read_text())
    return {**result, "samples_per_second": summary["samples_per_second"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gigabytes", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=Path("benchmark_particles"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    count = int(args.gigabytes * 1e9 / (SIZE * SIZE * 4))
    folder = args.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sets = [f"data.image_size={SIZE}", "data.snr=1.0", "data.ctf={defocus_min: 8000.0, defocus_max: 12000.0}"]
    simulated = measured(
        toolkit(
            "simulate",
            RECIPE,
            "--count",
            count,
            "--out",
            folder / "stack",
            "--overwrite",
            *[a for s in sets for a in ("--set", s)],
        )
    )
    star = folder / "stack" / "particles.star"
    tables = starfile.read(star)
    subset = folder / "stack" / "subset.star"
    starfile.write(
        {"optics": tables["optics"], "particles": tables["particles"].iloc[:SUBSET]}, subset, overwrite=True
    )
    stack_gb = (folder / "stack" / "particles.mrcs").stat().st_size / 1e9

    dropped = drop_page_cache()
    streamed = train(star, folder / "run_streamed", args.steps)
    in_memory = train(subset, folder / "run_subset", args.steps)
    dropped = drop_page_cache() and dropped
    out = folder / "stack" / "predicted.star"
    inferred = measured(toolkit("infer", folder / "run_streamed", star, "--out", out, "--overwrite"))
    result = {
        "particles": count,
        "stack_gb": stack_gb,
        "page_cache_dropped": dropped,
        "simulate": {k: v for k, v in simulated.items() if k != "output"},
        "train_streamed": {k: v for k, v in streamed.items() if k != "output"},
        "train_in_memory": {k: v for k, v in in_memory.items() if k != "output"},
        "throughput_ratio": streamed["samples_per_second"] / in_memory["samples_per_second"],
        "infer": {k: v for k, v in inferred.items() if k != "output"},
        "infer_particles_per_second": count / inferred["seconds"],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print(f"| {count:,} particles of {SIZE}x{SIZE}, {stack_gb:.2f} GB | page cache dropped: {dropped} |")
    print("| command | wall (s) | peak RssAnon (GB) | throughput |")
    print("|---|---|---|---|")
    rows = [
        ("simulate", simulated, f"{count / simulated['seconds']:.0f} particles/s"),
        ("run, streamed from the stack", streamed, f"{streamed['samples_per_second']:.0f} samples/s"),
        (
            f"run, first {SUBSET:,} particles (in memory)",
            in_memory,
            f"{in_memory['samples_per_second']:.0f} samples/s",
        ),
        ("infer over the stack", inferred, f"{result['infer_particles_per_second']:.0f} particles/s"),
    ]
    for name, run, throughput in rows:
        print(f"| {name} | {run['seconds']:.0f} | {run['rss_anon_gb']:.2f} | {throughput} |")
    print(f"streamed / in-memory training throughput: {result['throughput_ratio']:.3f} (target >= 0.9)")


if __name__ == "__main__":
    main()
