"""The contract and its enforcement, in a worker process per harness.

Every input must end in a successful parse or a ``LitesegError``. Violations: any other exception, a hang
(longer than ``timeout`` seconds; a Python-level alarm, and a C-level watchdog that kills the worker) and peak
RSS growing more than the harness's ``rss_cap_mb`` over the worker's baseline (also capped with RLIMIT_AS, so
a bomb cannot take the machine down). Violating inputs are saved under ``artifacts`` for replay.
"""
from __future__ import annotations

import faulthandler
import hashlib
import json
import random
import resource
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .mutate import mutate_bytes, splice
from .targets import Harness


class Hang(BaseException):
    """Raised by the alarm when one input runs past the timeout (BaseException: parsers must not catch it)."""


@dataclass
class Violation:
    kind: str  # crash | hang | memory
    error: str
    where: str
    input: str  # saved reproducer
    count: int = 1


@dataclass
class Report:
    target: str
    engine: str
    seed: int
    runs: int = 0
    accepted: int = 0
    rejected: int = 0
    seconds: float = 0.0
    peak_rss_growth_mb: float = 0.0
    rss_cap_mb: int = 0
    violations: list[Violation] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _rss_mb() -> float:
    """Peak RSS of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _current_rss_mb() -> float:
    """Current RSS (MB): growth that stays below an earlier peak of the process shows only here."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * resource.getpagesize() / (1 << 20)


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/liteseg/" in f.filename] or frames
    f = ours[-1] if ours else None
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}" if f else "?"


def _on_alarm(_signum, _frame):
    raise Hang()


def limit_memory(cap_mb: int) -> None:
    """Hard backstop: the address space may grow by twice the RSS cap (plus slack for allocator arenas)."""
    limit = _vm_bytes() + (2 * cap_mb + 1024) * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _structured(harness: Harness, data: bytes, rng: random.Random) -> bytes:
    try:
        return rng.choice(harness.mutators)(data, rng)[: harness.max_len]
    except Exception:  # a mutant the format's own writer refuses (e.g. a tar name too long): mutate bytes
        return mutate_bytes(data, rng, harness.max_len)


def run(harness: Harness, runs: int, seed: int, timeout: float, artifacts: Path, max_seconds: float = 0,
        rlimit: bool = True) -> Report:
    """Run ``runs`` inputs (seeds first, then mutants) through ``harness.target`` under the contract
    (fewer if ``max_seconds`` runs out first). ``rlimit=False`` skips the RLIMIT_AS backstop (for in-process
    tests of the runner itself; the RSS cap is still checked)."""
    from liteseg.errors import LitesegError

    artifacts.mkdir(parents=True, exist_ok=True)
    current = artifacts / "current.bin"
    corpus = [s[: harness.max_len] for s in harness.seeds()]
    pool = list(corpus)  # seeds plus mutants that parsed (they reach deeper code)
    rng = random.Random(seed)
    report = Report(harness.name, "mutate", seed, rss_cap_mb=harness.rss_cap_mb)
    found: dict[tuple[str, str], Violation] = {}
    if rlimit:
        limit_memory(harness.rss_cap_mb)
    baseline, baseline_now = _rss_mb(), _current_rss_mb()
    signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()

    def record(kind: str, error: str, where: str, data: bytes) -> None:
        key = (kind, f"{error.split(':')[0]} @ {where}")
        if key in found:
            found[key].count += 1
            return
        name = artifacts / f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
        name.write_bytes(data)
        found[key] = Violation(kind, error[:500], where, str(name))

    for i in range(runs):
        if max_seconds and time.perf_counter() - start > max_seconds:
            break
        if i < len(corpus):
            data = corpus[i]
        elif harness.mutators and rng.random() < 0.4:
            data = _structured(harness, rng.choice(pool), rng)
        elif rng.random() < 0.05 and len(pool) > 1:
            data = splice(rng.choice(pool), rng.choice(pool), rng)[: harness.max_len]
        else:
            data = mutate_bytes(rng.choice(pool), rng, harness.max_len)
        current.write_bytes(data)
        faulthandler.dump_traceback_later(timeout + 5, exit=True)  # C-level hangs: the parent sees the exit
        signal.setitimer(signal.ITIMER_REAL, timeout)
        t0 = time.perf_counter()
        try:
            harness.target(data)
            report.accepted += 1
            if len(pool) < 256 and i >= len(corpus):
                pool.append(data)
        except LitesegError:
            report.rejected += 1
        except Hang:
            record("hang", f"Hang: over {timeout:g} s", "?", data)
        except MemoryError as e:
            record("memory", f"MemoryError: {e}", _where(e), data)
        except Exception as e:  # the contract: nothing but LitesegError may escape
            record("crash", f"{type(e).__name__}: {e}", _where(e), data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            faulthandler.cancel_dump_traceback_later()
        if time.perf_counter() - t0 > timeout:
            record("hang", f"Hang: {time.perf_counter() - t0:.1f} s", "?", data)
        # a new peak, or memory held above where the run started (in a process whose earlier peak is higher,
        # e.g. a long test session, the peak alone misses it)
        growth = max(_rss_mb() - baseline, _current_rss_mb() - baseline_now)
        if growth > harness.rss_cap_mb and growth > report.peak_rss_growth_mb:
            record("memory", f"peak RSS grew {growth:.0f} MB (cap {harness.rss_cap_mb} MB)", "?", data)
        report.peak_rss_growth_mb = max(report.peak_rss_growth_mb, growth)
        report.runs = i + 1
    report.seconds = time.perf_counter() - start
    report.violations = list(found.values())
    current.unlink(missing_ok=True)
    return report
