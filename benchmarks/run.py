"""Measure xgen-audit's speed and memory on deterministic synthetic compose trees.

Every measurement runs the installed command line in a fresh subprocess, so each
one pays the interpreter's start-up and imports, as a user's run does. Wall time
comes from time.perf_counter around the child; peak resident memory comes from
os.wait4's rusage of that child alone (ru_maxrss, KiB on Linux).

The trees are built from the repository's fixtures (the passing rule fixtures, the
anchor stack and the xgenerator project) and from generated files with anchors,
merge keys, interpolation and Celery worker commands. The generator is seeded, so
two runs with the same seed write the same bytes.

When `compose-lint` is installed next to this interpreter (or on PATH), it runs on
the same single file and the same 200 files, and the table shows the ratio.

Usage:
    python benchmarks/run.py            # the full run (about two minutes on 2 cores)
    python benchmarks/run.py --quick    # a smoke run with small trees
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
XGENERATOR = FIXTURES / "xgenerator"

MEMORY_TARGET_MIB = 40.0
LINEARITY_TOLERANCE = 0.10
JOBS_TARGET = 1.7


@dataclass(frozen=True)
class Sizes:
    startup_runs: int
    many: int
    huge: int
    jobs_files: int
    celery_subprojects: int


FULL = Sizes(startup_runs=11, many=200, huge=10_000, jobs_files=2_000, celery_subprojects=10)
QUICK = Sizes(startup_runs=3, many=20, huge=100, jobs_files=40, celery_subprojects=2)


@dataclass
class Measurement:
    label: str
    files: int
    seconds: float
    peak_mib: float
    exit_code: int
    error: str = ""
    samples: list[float] = field(default_factory=list)

    @property
    def per_file_ms(self) -> float:
        return 1000.0 * self.seconds / self.files if self.files else 0.0


# ---------------------------------------------------------------------------
# Tree generation


def fixture_templates() -> list[str]:
    """Return the fixture compose files that stand alone (no include, no other-file extends)."""
    candidates = sorted(FIXTURES.glob("rules/*/pass/*.yml")) + sorted(FIXTURES.glob("rules/*/pass/*.yaml"))
    candidates += [
        XGENERATOR / "docker-compose.yml",
        FIXTURES / "xgenerator-hardened" / "docker-compose.yml",
        FIXTURES / "stacks" / "anchors" / "compose.yaml",
        FIXTURES / "stacks" / "debug-profile" / "compose.yaml",
    ]
    texts = []
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        # A copy lands in another folder, so files that pull in their neighbours would
        # only measure a missing-file error.
        if "include:" in text or "file:" in text or "extends:" in text:
            continue
        texts.append(text)
    return texts


_IMAGES = ["python:3.12-slim", "example/app:${APP_TAG:-1.0}", "ghcr.io/example/api:2.3", "node:22-alpine"]
_REDIS_IMAGES = ["redis:7-alpine", "redis:${REDIS_TAG:-7.2}", "valkey/valkey:8", "bitnami/redis:7.2"]
_QUEUES = ["default", "emails", "reports", "media", "billing"]


def synthetic_compose(rng: random.Random, index: int) -> str:
    """Return a generated compose file: an anchored worker block, Celery workers, an API and Redis."""
    workers = rng.randint(1, 5)
    lines = [
        f"# generated file {index}",
        "x-worker: &worker",
        f"  image: {rng.choice(_IMAGES)}",
        "  environment: &worker-env",
        "    CELERY_BROKER_URL: redis://redis:6379/0",
        "    LOG_LEVEL: ${LOG_LEVEL:-info}",
        f"    CONCURRENCY: \"{rng.randint(1, 8)}\"",
        "  depends_on:",
        "    redis:",
        "      condition: service_healthy",
    ]
    if rng.random() < 0.5:
        lines += [
            "  deploy:",
            "    resources:",
            "      limits:",
            f"        cpus: \"{rng.choice(['0.5', '1', '2'])}\"",
            f"        memory: {rng.choice(['256M', '512M', '1G'])}",
        ]
    if rng.random() < 0.5:
        lines += ["  logging: &logging", "    driver: json-file", "    options:", "      max-size: 10m"]
    lines += ["", "services:", "  api:", "    build: ."]
    lines.append(f"    command: uvicorn app.api:app --host 0.0.0.0 --port {8000 + index % 100}")
    if rng.random() < 0.6:
        lines += ["    ports:", f"      - \"{rng.choice(['', '127.0.0.1:'])}${{API_PORT:-8000}}:8000\""]
    else:
        lines += ["    ports:", "      - target: 8000", "        published: \"8000\"", "        protocol: tcp"]
    lines += ["    env_file: .env", "    depends_on:", "      - redis"]
    for number in range(workers):
        queue = rng.choice(_QUEUES)
        lines += [f"  worker-{number}:", "    <<: *worker"]
        options = rng.choice(["--loglevel=info", f"-Q {queue} -c 2", "--max-tasks-per-child=100", "-O fair"])
        if rng.random() < 0.5:
            lines.append(f"    command: celery -A app.celery_app worker {options}")
        else:
            lines += ["    command:", "      - celery", "      - -A", "      - app.celery_app", "      - worker"]
            lines += [f"      - {part}" for part in options.split()]
        if rng.random() < 0.4:
            lines += ["    environment:", "      <<: *worker-env", f"      QUEUE: {queue}"]
        if rng.random() < 0.3:
            lines += ["    stop_grace_period: 60s", "    init: true"]
    if rng.random() < 0.5:
        lines += ["  beat:", "    <<: *worker", "    command: celery -A app.celery_app beat --loglevel=info"]
    lines += ["  redis:", f"    image: {rng.choice(_REDIS_IMAGES)}"]
    if rng.random() < 0.6:
        lines += [
            "    healthcheck:",
            "      test: [\"CMD\", \"redis-cli\", \"ping\"]",
            "      interval: 10s",
            "      retries: 5",
        ]
    if rng.random() < 0.5:
        lines += ["    volumes:", "      - redis-data:/data", "    command: redis-server --appendonly yes"]
        volumes = True
    else:
        volumes = False
    if rng.random() < 0.3:
        lines += ["    ports:", "      - 6379:6379"]
    if volumes:
        lines += ["", "volumes:", "  redis-data: {}"]
    return "\n".join(lines) + "\n"


def write_tree(root: Path, count: int, seed: int, templates: list[str]) -> list[Path]:
    """Write `count` compose files, one per folder, and return their paths in order."""
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        folder = root / f"p{index:05d}"
        folder.mkdir(parents=True)
        if rng.random() < 0.35:
            text = rng.choice(templates)
        else:
            text = synthetic_compose(rng, index)
        name = rng.choice(["docker-compose.yml", "compose.yaml"])
        path = folder / name
        path.write_text(text, encoding="utf-8")
        (folder / ".env").write_text(
            f"APP_TAG=1.{index % 7}\nREDIS_TAG=7.{index % 3}\nAPI_PORT={8000 + index % 50}\n"
            "CELERY_BROKER_URL=redis://redis:6379/0\n",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def write_celery_project(root: Path, subprojects: int, seed: int) -> int:
    """Write an xgenerator-shaped project (compose + app/celeryconfig.py) and copies that vary it.

    Returns the number of files written.
    """
    rng = random.Random(seed)
    written = 0
    for index in range(subprojects):
        folder = root if index == 0 else root / "services" / f"s{index:02d}"
        (folder / "app").mkdir(parents=True, exist_ok=True)
        for name in ("__init__.py", "celery_app.py"):
            shutil.copyfile(XGENERATOR / "app" / name, folder / "app" / name)
        config = (XGENERATOR / "app" / "celeryconfig.py").read_text(encoding="utf-8")
        config += f"worker_prefetch_multiplier = {rng.randint(1, 4)}\n"
        if rng.random() < 0.5:
            config += "task_acks_late = True\nworker_max_tasks_per_child = 100\n"
        (folder / "app" / "celeryconfig.py").write_text(config, encoding="utf-8")
        shutil.copyfile(XGENERATOR / ".env", folder / ".env")
        compose = (XGENERATOR / "docker-compose.yml").read_text(encoding="utf-8")
        if index:
            compose = synthetic_compose(rng, index)
        (folder / "docker-compose.yml").write_text(compose, encoding="utf-8")
        written += 5
    return written


# ---------------------------------------------------------------------------
# Running


def tool_command(name: str) -> list[str] | None:
    """Return the command for a console script installed next to this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else None


def child_environment() -> dict[str, str]:
    """The environment of measured children: bytecode caching on, as in a normal install.

    This workplace sets PYTHONDONTWRITEBYTECODE, which makes an editable install
    compile every module on every start, while a wheel install ships compiled files.
    """
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def run_child(command: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """Run one child to completion; return wall seconds, peak RSS in MiB, exit code and stderr tail."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, env=child_environment()
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        tail = stderr.read()[-600:].decode("utf-8", errors="replace")
    return elapsed, usage.ru_maxrss / 1024.0, process.returncode, tail


def measure(label: str, command: list[str], cwd: Path, files: int, runs: int = 1) -> Measurement:
    # One unmeasured run first, so bytecode caches and the Celery option cache exist.
    run_child(command, cwd)
    samples, peaks, code, tail = [], [], 0, ""
    for _ in range(runs):
        elapsed, peak, code, tail = run_child(command, cwd)
        samples.append(elapsed)
        peaks.append(peak)
    # Exit 1 means findings; anything else is a failure worth showing.
    error = "" if code in (0, 1) else f"exit {code}: {tail.strip()}"
    return Measurement(label, files, statistics.median(samples), max(peaks), code, error, samples)


def has_jobs_option(xgen: list[str]) -> bool:
    completed = subprocess.run([*xgen, "check", "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    return "--jobs" in completed.stdout


def measure_parallel_split(xgen: list[str], root: Path, folders: list[Path]) -> Measurement:
    """Run two processes at once, each on half of the folders: what a two-worker pool could reach."""
    half = len(folders) // 2
    parts = [folders[:half], folders[half:]]
    start = time.perf_counter()
    processes = [
        subprocess.Popen([*xgen, "check", *map(str, part)], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for part in parts
    ]
    peak, codes = 0.0, []
    for process in processes:
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        codes.append(process.returncode)
        peak = max(peak, usage.ru_maxrss / 1024.0)
    elapsed = time.perf_counter() - start
    bad = [code for code in codes if code not in (0, 1)]
    return Measurement("2 processes, half each", len(folders), elapsed, peak, max(codes), f"exit {bad}" if bad else "")


# ---------------------------------------------------------------------------
# Report


def machine_lines() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return [
        f"- nproc: {os.cpu_count()}",
        f"- CPU: {model}",
        f"- memory: {memory}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- platform: {platform.platform()}",
    ]


def row(measurement: Measurement, other: Measurement | None = None) -> str:
    per_file = f"{measurement.per_file_ms:.2f}" if measurement.files > 1 else "-"
    cells = [
        measurement.label,
        str(measurement.files),
        f"{measurement.seconds:.3f}",
        per_file,
        f"{measurement.peak_mib:.1f}",
    ]
    if other is not None:
        ratio = measurement.seconds / other.seconds if other.seconds else float("nan")
        cells += [f"{other.seconds:.3f}", f"{other.peak_mib:.1f}", f"{ratio:.2f}"]
    else:
        cells += ["-", "-", "-"]
    cells.append(measurement.error or "")
    return "| " + " | ".join(cells) + " |"


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small trees and 3 start-up runs: a smoke run.")
    parser.add_argument("--seed", type=int, default=20240611, help="Seed of the tree generator.")
    parser.add_argument("--runs", type=int, help="Start-up runs to take the median of (default: 11, quick: 3).")
    parser.add_argument("--keep", type=Path, help="Write the trees into this folder and keep them.")
    parser.add_argument("--no-compose-lint", action="store_true", help="Skip compose-lint even when it is installed.")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    runs = args.runs or sizes.startup_runs
    xgen = tool_command("xgen-audit")
    if xgen is None:
        print("xgen-audit is not installed; run `pip install -e .` first", file=sys.stderr)
        return 2
    compose_lint = None if args.no_compose_lint else tool_command("compose-lint")

    work = args.keep or Path(tempfile.mkdtemp(prefix="xgen-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return run_all(work, sizes, runs, args.seed, xgen, compose_lint, args)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run_all(work: Path, sizes: Sizes, runs: int, seed: int, xgen: list[str], compose_lint, args) -> int:
    templates = fixture_templates()
    single = work / "single"
    single.mkdir()
    shutil.copyfile(XGENERATOR / "docker-compose.yml", single / "docker-compose.yml")
    shutil.copyfile(XGENERATOR / ".env", single / ".env")
    many_files = write_tree(work / "many", sizes.many, seed, templates)
    huge_files = write_tree(work / "huge", sizes.huge, seed + 1, templates)
    jobs_files = write_tree(work / "jobs", sizes.jobs_files, seed + 2, templates)
    celery_count = write_celery_project(work / "celery", sizes.celery_subprojects, seed + 3)

    results: list[str] = []
    start = measure("start-up, one file", [*xgen, "check", "docker-compose.yml"], single, 1, runs)
    start_other = None
    if compose_lint:
        start_other = measure("compose-lint start-up", [*compose_lint, "docker-compose.yml"], single, 1, runs)
    results.append(row(start, start_other))

    relative_many = [str(path.relative_to(work / "many")) for path in many_files]
    many = measure(f"{sizes.many} files, one process", [*xgen, "check", *relative_many], work / "many", sizes.many)
    many_other = None
    if compose_lint:
        many_other = measure("compose-lint", [*compose_lint, *relative_many], work / "many", sizes.many)
    results.append(row(many, many_other))

    many_folder = measure(f"{sizes.many} files, folder walk", [*xgen, "check", "."], work / "many", sizes.many)
    results.append(row(many_folder))
    huge = measure(f"{sizes.huge:,} files, folder walk", [*xgen, "check", "."], work / "huge", sizes.huge)
    results.append(row(huge))
    celery = measure(
        f"Celery project ({sizes.celery_subprojects} compose files)", [*xgen, "check", "."], work / "celery", celery_count
    )
    results.append(row(celery))

    jobs_available = has_jobs_option(xgen)
    jobs_root = work / "jobs"
    if jobs_available:
        serial = measure(f"{sizes.jobs_files:,} files, --jobs 1", [*xgen, "check", "--jobs", "1", "."], jobs_root, sizes.jobs_files)
        parallel = measure(f"{sizes.jobs_files:,} files, --jobs 2", [*xgen, "check", "--jobs", "2", "."], jobs_root, sizes.jobs_files)
    else:
        serial = measure(f"{sizes.jobs_files:,} files, one process", [*xgen, "check", "."], jobs_root, sizes.jobs_files)
        folders = sorted(path.parent.relative_to(jobs_root) for path in jobs_files)
        parallel = measure_parallel_split(xgen, jobs_root, folders)
    results.append(row(serial))
    results.append(row(parallel))

    print("## Results\n")
    print(f"Command: `python benchmarks/run.py{' --quick' if args.quick else ''}` (seed {seed}, start-up median of {runs} runs)\n")
    print("\n".join(machine_lines()))
    print()
    print("| measurement | files | xgen-audit s | ms per file | peak MiB | compose-lint s | compose-lint MiB | ratio | error |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(results))
    print()
    print_targets(start, start_other, many, many_other, many_folder, huge, serial, parallel, jobs_available)
    failures = [m for m in (start, many, many_folder, huge, celery, serial, parallel) if m.error]
    return 1 if failures else 0


def print_targets(start, start_other, many, many_other, many_folder, huge, serial, parallel, jobs_available) -> None:
    print("## Targets\n")
    if start_other is not None:
        ratio = start.seconds / start_other.seconds
        print(f"- start-up no slower than compose-lint: {verdict(ratio <= 1.0)} (ratio {ratio:.2f})")
        ratio = many.seconds / many_other.seconds
        print(f"- {many.files} files no slower than compose-lint: {verdict(ratio <= 1.0)} (ratio {ratio:.2f})")
    else:
        print("- compose-lint comparisons: not measured (compose-lint is not installed)")
    print(f"- peak memory for {many.files} files under {MEMORY_TARGET_MIB:.0f} MiB: "
          f"{verdict(many.peak_mib < MEMORY_TARGET_MIB)} ({many.peak_mib:.1f} MiB)")
    # Start-up is paid once per process, so it is taken out before comparing per-file times.
    small = (many_folder.seconds - start.seconds) / many_folder.files
    large = (huge.seconds - start.seconds) / huge.files
    ratio = large / small if small > 0 else float("nan")
    print(f"- time per file at {huge.files:,} within {LINEARITY_TOLERANCE:.0%} of {many_folder.files} "
          f"(start-up taken out): {verdict(ratio <= 1 + LINEARITY_TOLERANCE)} "
          f"({1000 * large:.2f} ms vs {1000 * small:.2f} ms, ratio {ratio:.2f}; "
          f"raw {huge.per_file_ms:.2f} vs {many_folder.per_file_ms:.2f} ms)")
    speedup = serial.seconds / parallel.seconds if parallel.seconds else float("nan")
    if jobs_available:
        print(f"- --jobs 2 at least {JOBS_TARGET}x: {verdict(speedup >= JOBS_TARGET)} ({speedup:.2f}x)")
    else:
        print(f"- --jobs 2 at least {JOBS_TARGET}x: not measurable, `check` has no --jobs option; "
              f"two processes on half the files each reach {speedup:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
