"""``liteseg predict SOURCE [--model M] [-o OUT]``: segment images, folders, globs, list files and videos."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import LitesegError
from ..inference.backend_names import backend_help
from . import options, ray_engine
from .options import DEVICE_HELP
from .run_dir import check_output_dir, prepare_output_dir

if TYPE_CHECKING:
    import numpy as np

    from ..inference.budget import PixelBudget
    from ..inference.inputs import Frame
    from ..inference.segmenter import PreparedBatch, Segmenter

log = logging.getLogger("liteseg")
KINDS = ("labels", "color", "overlay")
READ_AHEAD = WRITE_BEHIND = 2  # batches waiting on each side of the model: bounds memory on any input length


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment images, folders, globs, list files, videos or live streams",
                       description="Segment SOURCE (an image, a folder (recursive), a glob, a .txt list, a video or a "
                                   "live source) and write label PNGs, colour masks and overlays.")
    p.add_argument("source", help="image, folder, glob ('imgs/*.png'), list file (.txt), video (.mp4/.avi), or live: "
                                  "camera index (0), rtsp://, rtmp://, http(s):// stream, - (MJPEG or Y4M on stdin), "
                                  ".streams file (one source per line)")
    p.add_argument("--model", "-m", help="model file (any format liteseg.load accepts, or .onnx); default: the "
                                         "shipped default model, PP-LiteSeg-T for CamVid street scenes (11 classes, "
                                         "480x360)")
    p.add_argument("-o", "--output", type=Path, help="output folder (default: a new runs/predict/expN)")
    p.add_argument("--exist-ok", action="store_true", help="write into an existing output folder")
    p.add_argument("--backend", help=backend_help())
    p.add_argument("--device", help=f"{DEVICE_HELP} (default: cpu)")
    p.add_argument("--save", default=",".join(KINDS),
                   help="comma-separated outputs per image: labels, color, overlay (default all three)")
    p.add_argument("--cityscapes-ids", action="store_true", help="also write Cityscapes labelIds PNGs (submission)")
    p.add_argument("--save-probs", action="store_true", help="also write class probabilities (.npy, float16)")
    p.add_argument("--save-video", action="store_true",
                   help="for videos and live sources, write a side-by-side input|overlay .mp4")
    p.add_argument("--max-frames", type=options.positive_int, help="live sources: stop after this many results")
    p.add_argument("--duration", type=options.float_range(0.0, low_open=True), help="live sources: stop after "
                                                                                      "this many seconds")
    p.add_argument("--preview", metavar="PORT", type=options.port,
                   help="live sources: serve an MJPEG page of the overlay on http://127.0.0.1:PORT/")
    p.add_argument("--alpha", type=options.float_range(0.0, 1.0), default=0.5, help="overlay opacity (default 0.5)")
    p.add_argument("--batch-size", type=options.positive_int, default=1,
                   help="images per forward pass (same-size images)")
    p.add_argument("--threads", type=options.threads, help="CPU threads for the backend (0: default)")
    p.add_argument("--imgsz", metavar="WxH|native", type=options.imgsz,
                   help="run at this size, aspect kept (default: the model's own, e.g. 480x360; native: each "
                        "image's own); labels come back at the original size")
    p.add_argument("--tile", metavar="CROP,STRIDE", type=options.tile,
                   help="sliding-window prediction at the chosen size, e.g. --imgsz native --tile "
                        "1024x512,768x384 for very large images (logits averaged, memory bounded)")
    p.add_argument("--max-pixels", type=options.positive_int, default=4096 * 4096,
                   help="largest input the network runs whole (width x height, after resizing to the model's "
                        "size), else skipped: use --tile for larger ones (default 16777216, about 2.3 GB for "
                        "PP-LiteSeg on CPU)")
    p.add_argument("--max-aspect", type=options.float_range(1.0), default=20.0,
                   help="largest aspect ratio (long side / short side), else skipped (default 20)")
    p.add_argument("--half", action="store_true", help="fp16 on GPU / bf16 on CPU (backends torch, torch-opt, "
                                                         "torch-compile; others: an error)")
    ray_engine.add_options(p, resume=True)
    p.set_defaults(func=run, check=options.check_inference)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..inference.budget import PixelBudget
    from ..inference.inputs import list_sources, output_names
    from ..inference.about import describe
    from ..inference.output_encoding import check_kinds
    from ..inference.segmenter import Segmenter
    from ..loading.zoo import default_model
    from .predict_live import open_live, run_live

    kinds = output_kinds(args)
    if args.engine == "ray":
        return ray_engine.run_predict(args, kinds)
    ray_engine.check_local(args)
    live = open_live(args)  # live sources are opened now: one clear error for any that cannot be read
    files = list_sources(args.source) if live is None else []  # fails early on a missing source or empty folder
    output_names(files, Path(args.source) if Path(args.source).is_dir() else None)  # and on clashing names
    if args.output is not None:
        check_output_dir(args.output, exist_ok=args.exist_ok)
    budget = PixelBudget(None if args.tile else args.max_pixels, args.max_aspect)  # tiles bound memory already
    seg = Segmenter(args.model or default_model(), backend=args.backend, device=args.device, probs=args.save_probs,
                    batch_size=args.batch_size, half=args.half, threads=args.threads, tile=args.tile,
                    imgsz=args.imgsz, budget=budget)
    print(f"model: {describe(seg.meta)}")
    seg.say = lambda text: tqdm.write(f"note: {text}", file=sys.stderr)
    check_kinds(kinds, seg.meta.num_classes)
    if live is not None:
        return run_live(args, kinds, seg, live)
    return _run_files(args, kinds, seg, files, budget)


def output_kinds(args: argparse.Namespace) -> list[str]:
    """The output kinds ``--save``, ``--save-probs`` and ``--cityscapes-ids`` ask for."""
    kinds = [k.strip() for k in args.save.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise LitesegError(f"--save: unknown output(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    return kinds + ["probs"] * args.save_probs + ["label_ids"] * args.cityscapes_ids


def _run_files(args: argparse.Namespace, kinds: list[str], seg: Segmenter, files: list[Path],
               budget: PixelBudget) -> int:
    """Images, folders and videos: read ahead, the model here, outputs written behind (pipeline.py)."""
    from tqdm import tqdm

    from ..inference.inputs import Frame, iter_frames
    from ..inference.pipeline import WriteBehind, prefetch
    from ..inference.result_writer import ResultWriter

    total, unit = _count(files)
    run = {"done": 0, "failed": 0, "writer": None}  # the output folder is made with the first result,
    start = time.perf_counter()                      # so a run where every input fails writes nothing
    bar = tqdm(desc="predict", total=total, unit=unit, dynamic_ncols=True)
    windows = _window_bar(seg) if args.tile else None

    def finish(batch: PreparedBatch, outputs: np.ndarray) -> None:  # runs in the writer thread
        if run["writer"] is None:
            out_dir = prepare_output_dir(args.output, "runs/predict", exist_ok=args.exist_ok)
            run["writer"] = ResultWriter(out_dir, kinds, alpha=args.alpha)
        for frame, result in zip(batch.items, seg.finish(batch, outputs)):
            run["writer"].write(result, frame.name)
            if frame.video and args.save_video:
                run["writer"].add_video_frame(Path(frame.video).stem, result, frame.fps)
        run["done"] += len(batch.items)
        bar.update(len(batch.items))
        bar.set_postfix_str(f"{run['done'] / (time.perf_counter() - start):.2f} {unit}/s")

    batches = seg.batches(_within(iter_frames(args.source, files), budget, seg), lambda frame: frame.image)
    interrupted = False
    try:
        with closing(prefetch(batches, READ_AHEAD)) as work, WriteBehind(WRITE_BEHIND) as writer:
            for batch in work:
                if isinstance(batch, Frame):  # unreadable file or video
                    run["failed"] += 1
                    bar.update(1)
                    tqdm.write(f"skipped: {batch.error}", file=sys.stderr)
                    continue
                for frame in batch.items:
                    for note in frame.notes:
                        tqdm.write(f"warning: {frame.source}: {note}", file=sys.stderr)
                writer.submit(finish, batch, seg.forward(batch))
    except KeyboardInterrupt:  # Ctrl-C: what was written so far is kept (videos too), and summarised below
        interrupted = True
    except BaseException:
        if run["writer"] is not None:
            run["writer"].abort()  # a failed run publishes no partial video
        raise
    finally:
        bar.close()
        if windows is not None:
            windows.close()
    if run["writer"] is not None:
        run["writer"].close()
    return _summary(run, seg, kinds, unit, time.perf_counter() - start, interrupted)


def _window_bar(seg: Segmenter) -> Any:
    """A progress bar of the sliding windows of the current image (``--tile``)."""
    from tqdm import tqdm

    windows = tqdm(desc="windows", unit="win", dynamic_ncols=True, leave=False)

    def on_window(done: int, count: int) -> None:
        windows.total = count
        windows.n = done
        windows.refresh()

    seg.on_window = on_window
    return windows


def _summary(run: dict[str, Any], seg: Segmenter, kinds: list[str], unit: str, elapsed: float,
             interrupted: bool) -> int:
    done, failed, writer = run["done"], run["failed"], run["writer"]
    noun = "frame(s)" if unit == "frame" else "image(s)"
    stopped = "interrupted (Ctrl-C): " if interrupted else ""
    if writer is None:
        print(f"{stopped}0 {noun} segmented, {failed} failed; nothing written")
        return 130 if interrupted else 1
    legend_path = writer.write_legend(seg.meta.class_names, seg.meta.palette)
    rate = done / elapsed if elapsed > 0 else 0.0
    print(f"{stopped}{done} {noun} segmented, {failed} failed, {rate:.2f} {unit}/s ({seg.backend.name}) -> "
          f"{writer.out_dir}")
    if "overlay" in kinds:
        print(f"overlays: {writer.out_dir / 'overlay'}   legend: {legend_path}")
    for video in writer.videos.values():
        if video.published:
            print(f"side-by-side video: {video.path}")
    if not getattr(seg.meta, "trained", True):
        print("note: these weights are untrained (random); the overlays show the pipeline, not real segmentation")
    return 130 if interrupted else 1 if failed else 0


def _within(frames: Iterator[Frame], budget: PixelBudget, seg: Segmenter) -> Iterator[Frame]:
    """``frames``, with those whose network input would be over the pixel budget turned into errors (skipped)
    before they become floats; the budget applies to the size the model runs at (a 48-megapixel photo resized to
    the model's 480x360 fits)."""
    from ..inference.inputs import Frame

    for frame in frames:
        problem = None
        if frame.image is not None:
            h, w = frame.image.shape[:2]
            problem = budget.problem(w, h, area=False)  # aspect first: a thin image has no sensible network size
            if problem is None:
                net_h, net_w = seg.target_hw((h, w)) or (h, w)
                problem = budget.problem(net_w, net_h)
        yield Frame(frame.name, frame.source, error=f"{frame.source}: {problem}") if problem else frame


def _count(files: list[Path]) -> tuple[int | None, str]:
    """Progress total (images + video frames; None if a video's length is unknown) and its unit."""
    from ..inference.inputs import VIDEO_SUFFIXES, video_frame_count

    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    total: int | None = len(files) - len(videos)
    for path in videos:
        frames = video_frame_count(path)
        total = None if total is None or not frames else total + frames
    return total, "frame" if videos else "img"
