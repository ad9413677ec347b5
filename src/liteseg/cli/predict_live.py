"""``liteseg predict`` on live sources (camera index, rtsp/rtmp/http(s) URL, ``-``, ``.streams``): newest frame
first, per-frame latency, ``--max-frames`` / ``--duration``, ``--save-video`` at the processed rate, ``--preview``."""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LitesegError
from .run_dir import prepare_output_dir

if TYPE_CHECKING:
    from ..inference.segmenter import Segmenter
    from ..inference.streams import LiveSources, LiveStats

LIVE_ONLY = ("max_frames", "duration", "preview")


def open_live(args: argparse.Namespace) -> LiveSources | None:
    """The opened live sources ``args.source`` names (one clear error for any that cannot be read), or None for
    files, folders and videos."""
    from ..inference.streams import LiveSources, is_live, parse_sources

    if is_live(args.source):
        return LiveSources(parse_sources(args.source))
    given = [f"--{o.replace('_', '-')}" for o in LIVE_ONLY if getattr(args, o) is not None]
    if given:
        raise LitesegError(f"{', '.join(given)}: for live sources only (camera index, rtsp/rtmp/http(s) URL, - or "
                           f".streams), not {args.source}")
    return None


def run_live(args: argparse.Namespace, kinds: list[str], seg: Segmenter, live: LiveSources) -> int:
    """Segment the newest frame of each source until the sources end, a limit is reached or Ctrl-C."""
    from tqdm import tqdm

    from ..inference.preview import PreviewServer
    from ..inference.result_writer import ResultWriter
    from ..inference.streams import LiveStats, segment_live

    readers = live.readers
    subs = [f"{i}_{_slug(r.name)}" for i, r in enumerate(readers)] if len(readers) > 1 else None
    preview = PreviewServer(args.preview, [r.name for r in readers]) if args.preview is not None else None
    if preview is not None:
        print(f"preview: {preview.url}", flush=True)
    stats, writers, done = LiveStats(), {}, [0] * len(readers)
    out_dir: Path | None = None
    bar = tqdm(desc="live", total=args.max_frames, unit="frame", dynamic_ncols=True)
    reason = "the source ended" if len(readers) == 1 else "every source ended"
    try:
        for frame, result, model_s in segment_live(seg, live.frames(args.max_frames, args.duration)):
            out_dir = out_dir or prepare_output_dir(args.output, "runs/predict", exist_ok=args.exist_ok)
            if frame.source_id not in writers:
                target = out_dir / subs[frame.source_id] if subs else out_dir
                writers[frame.source_id] = ResultWriter(target, kinds, alpha=args.alpha)
            writer = writers[frame.source_id]
            writer.write(result, f"{frame.index:06d}")
            if args.save_video or preview is not None:
                shown = result.overlay(args.alpha)
                if preview is not None:
                    preview.publish(frame.source_id, shown)
                if args.save_video:
                    writer.add_video_frame("live", result, overlay=shown)  # at the rate frames are processed
            stats.add(frame, model_s)
            done[frame.source_id] += 1
            bar.update(1)
            bar.set_postfix_str(stats.line(live))
        if args.max_frames is not None and sum(done) >= args.max_frames:
            reason = "--max-frames reached"
        elif args.duration is not None and time.perf_counter() - stats.start >= args.duration:
            reason = "--duration reached"
    except KeyboardInterrupt:
        reason = "stopped by Ctrl-C"
    except BaseException:
        for writer in writers.values():
            writer.abort()  # a failed run publishes no partial video
        raise
    finally:
        bar.close()
        live.close()
        if preview is not None:
            preview.close()
    for writer in writers.values():
        writer.close()
    videos = [video for writer in writers.values() for video in writer.videos.values()]
    return _summary(stats, live, done, subs, videos, out_dir, reason, seg)


def _summary(stats: LiveStats, live: LiveSources, done: list[int], subs: list[str] | None, videos: list,
             out_dir: Path | None, reason: str, seg: Segmenter) -> int:
    elapsed = time.perf_counter() - stats.start
    if out_dir is None:
        print(f"0 frame(s) segmented in {elapsed:.1f} s ({reason}); nothing written")
        return 1
    from ..inference.result_writer import ResultWriter

    legend = ResultWriter(out_dir, ()).write_legend(seg.meta.class_names, seg.meta.palette)
    print(f"{sum(done)} frame(s) segmented in {elapsed:.1f} s ({reason}), {stats.processed_fps:.2f} frame/s "
          f"({seg.backend.name}) -> {out_dir}")
    print(f"latency (frame received -> result written): p50 {stats.percentile_ms(50):.0f} ms, "
          f"p95 {stats.percentile_ms(95):.0f} ms; model {stats.model_fps:.2f} fps; "
          f"{live.dropped} of {live.received} received frame(s) dropped (newest frame first)")
    for i, reader in enumerate(live.readers):
        where = f" -> {out_dir / subs[i]}" if subs else ""
        again = f", {reader.reconnects} reconnection(s)" if reader.reconnects else ""
        print(f"  {reader.name}: {done[i]} segmented, {reader.dropped} dropped{again}{where}")
    for video in videos:
        print(f"video: {video.path} ({video.frames} frames at {video.fps:.2f} fps, the rate they were processed)")
    print(f"legend: {legend}")
    return 0


def _slug(name: str) -> str:
    """A folder name for a source: its URL without the scheme, or ``camN`` / ``stdin``."""
    if name.isdigit():
        return f"cam{name}"
    if name == "-":
        return "stdin"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.split("://", 1)[-1]).strip("_")[:48]
