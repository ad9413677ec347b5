"""``liteseg predict SOURCE [--model M] [-o OUT]``: segment images, folders, globs, list files and videos."""
from __future__ import annotations

import argparse
import logging
import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LitesegError
from ..utils.io import atomic_path
from . import options, ray_engine
from .run_dir import check_output_dir, prepare_output_dir

if TYPE_CHECKING:
    import numpy as np

    from ..inference.inputs import Frame
    from ..inference.segmenter import PreparedBatch, SegResult

log = logging.getLogger("liteseg")
KINDS = ("labels", "color", "overlay")
READ_AHEAD = WRITE_BEHIND = 2  # batches waiting on each side of the model: bounds memory on any input length


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="segment images, folders, globs, list files or videos",
                       description="Segment SOURCE (an image, a folder (recursive), a glob, a .txt list or a video) "
                                   "and write label PNGs, colour masks and overlays.")
    p.add_argument("source", help="image, folder, glob ('imgs/*.png'), list file (.txt) or video (.mp4/.avi)")
    p.add_argument("--model", "-m", help="model file (any format liteseg.load accepts, or .onnx); default: the "
                                         "shipped default model")
    p.add_argument("-o", "--output", type=Path, help="output folder (default: a new runs/predict/expN)")
    p.add_argument("--exist-ok", action="store_true", help="write into an existing output folder")
    p.add_argument("--backend", help="torch, onnxruntime or openvino (default: torch; onnxruntime for .onnx)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda:0")
    p.add_argument("--save", default=",".join(KINDS),
                   help="comma-separated outputs per image: labels, color, overlay (default all three)")
    p.add_argument("--cityscapes-ids", action="store_true", help="also write Cityscapes labelIds PNGs (submission)")
    p.add_argument("--save-probs", action="store_true", help="also write class probabilities (.npy, float16)")
    p.add_argument("--save-video", action="store_true", help="for videos, write a side-by-side input|overlay .mp4")
    p.add_argument("--alpha", type=options.float_range(0.0, 1.0), default=0.5, help="overlay opacity (default 0.5)")
    p.add_argument("--batch-size", type=options.positive_int, default=1,
                   help="images per forward pass (same-size images)")
    p.add_argument("--threads", type=options.threads, help="CPU threads for the backend (0: default)")
    p.add_argument("--tile", metavar="CROP,STRIDE", type=options.slide,
                   help="sliding-window prediction for very large images, e.g. 1024x512,768x384 (logits averaged)")
    p.add_argument("--half", action="store_true", help="fp16 on GPU / bf16 on CPU where the backend supports it")
    ray_engine.add_options(p, resume=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from PIL import Image
    from tqdm import tqdm

    from ..inference.inputs import Frame, iter_frames, list_sources
    from ..inference.pipeline import WriteBehind, prefetch
    from ..inference.segmenter import Segmenter
    from ..inference.visualize import legend
    from ..loading.zoo import default_model
    from ..palettes import CITYSCAPES_TRAINID_TO_LABELID

    kinds = [k.strip() for k in args.save.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise LitesegError(f"--save: unknown output(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    if args.save_probs:
        kinds.append("probs")
    if args.engine == "ray":
        return ray_engine.run_predict(args, kinds)
    ray_engine.check_local(args)
    files = list_sources(args.source)  # fails early on a missing source or an empty folder
    total, unit = _count(files)
    if args.output is not None:
        check_output_dir(args.output, exist_ok=args.exist_ok)
    model = args.model or default_model()
    seg = Segmenter(model, backend=args.backend, device=args.device, probs=args.save_probs,
                    batch_size=args.batch_size, half=args.half, threads=args.threads, tile=args.tile)
    if args.cityscapes_ids and seg.meta.num_classes != len(CITYSCAPES_TRAINID_TO_LABELID):
        raise LitesegError(f"--cityscapes-ids needs a 19-class Cityscapes model; this one has {seg.meta.num_classes}")
    state = {"done": 0, "out_dir": None}  # the writer thread counts; the folder is made with the first result,
    failed = 0                            # so a run where every input fails writes nothing
    videos: dict[str, _VideoWriter] = {}
    start = time.perf_counter()
    bar = tqdm(desc="predict", total=total, unit=unit, dynamic_ncols=True)

    def finish(batch: PreparedBatch, outputs: np.ndarray) -> None:  # runs in the writer thread
        if state["out_dir"] is None:
            state["out_dir"] = prepare_output_dir(args.output, "runs/predict", exist_ok=args.exist_ok)
        for frame, result in zip(batch.items, seg.finish(batch, outputs)):
            _write(frame, result, kinds, args, state["out_dir"], videos)
        state["done"] += len(batch.items)
        bar.update(len(batch.items))
        bar.set_postfix_str(f"{state['done'] / (time.perf_counter() - start):.2f} {unit}/s")

    # read + decode + normalise ahead, the model here, argmax + colour + encode + write behind (pipeline.py)
    batches = seg.batches(iter_frames(args.source, files), lambda frame: frame.image)
    try:
        with closing(prefetch(batches, READ_AHEAD)) as work, WriteBehind(WRITE_BEHIND) as writer:
            for batch in work:
                if isinstance(batch, Frame):  # unreadable file or video
                    failed += 1
                    bar.update(1)
                    tqdm.write(f"skipped: {batch.error}")
                    continue
                for frame in batch.items:
                    for note in frame.notes:
                        tqdm.write(f"warning: {frame.source}: {note}")
                writer.submit(finish, batch, seg.forward(batch))
    finally:
        bar.close()
        for video in videos.values():
            video.close()
    done, out_dir = state["done"], state["out_dir"]
    elapsed = time.perf_counter() - start
    rate = done / elapsed if elapsed > 0 else 0.0
    noun = "frame(s)" if unit == "frame" else "image(s)"
    if out_dir is None:
        print(f"0 {noun} segmented, {failed} failed; nothing written")
        return 1
    legend_path = out_dir / "legend.png"
    with atomic_path(legend_path) as tmp:
        Image.fromarray(legend(seg.meta.class_names, seg.meta.palette)).save(tmp, format="PNG")
    print(f"{done} {noun} segmented, {failed} failed, {rate:.2f} {unit}/s ({seg.backend.name}) -> {out_dir}")
    if "overlay" in kinds:
        print(f"overlays: {out_dir / 'overlay'}   legend: {legend_path}")
    if not getattr(seg.meta, "trained", True):
        print("note: these weights are untrained (random); the overlays show the pipeline, not real segmentation")
    return 1 if failed else 0


def _count(files: list[Path]) -> tuple[int | None, str]:
    """Progress total (images + video frames; None if a video's length is unknown) and its unit."""
    from ..inference.inputs import VIDEO_SUFFIXES, video_frame_count

    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    total: int | None = len(files) - len(videos)
    for path in videos:
        frames = video_frame_count(path)
        total = None if total is None or not frames else total + frames
    return total, "frame" if videos else "img"


def _write(frame: Frame, result: SegResult, kinds: list[str], args: argparse.Namespace, out_dir: Path,
           videos: dict) -> None:
    import numpy as np
    from PIL import Image

    from ..inference.segmenter import PNG_OPTIONS, write_output
    from ..inference.visualize import side_by_side
    from ..palettes import CITYSCAPES_TRAINID_TO_LABELID

    for kind in kinds:
        suffix = ".jpg" if kind == "overlay" else ".npy" if kind == "probs" else ".png"
        write_output(out_dir / kind / f"{frame.name}{suffix}", kind, result, args.alpha, overwrite=True)
    if args.cityscapes_ids:
        ids = np.asarray(CITYSCAPES_TRAINID_TO_LABELID, dtype=np.uint8)[result.labels.clip(0, 18)]
        with atomic_path(out_dir / "label_ids" / f"{frame.name}.png") as tmp:
            Image.fromarray(ids).save(tmp, format="PNG", **PNG_OPTIONS)
    if frame.video and args.save_video:
        if frame.video not in videos:
            videos[frame.video] = _VideoWriter(out_dir / "video" / f"{Path(frame.video).stem}.mp4", frame.fps)
        videos[frame.video].write(side_by_side(frame.image, result.overlay(args.alpha)))


class _VideoWriter:
    """An .mp4 written to a temporary file and renamed into place on close."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps or 25.0
        self.writer = None
        self._ctx = atomic_path(path)
        self.tmp = self._ctx.__enter__()

    def write(self, rgb: np.ndarray) -> None:
        import cv2
        import numpy as np

        if self.writer is None:
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self.writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        self._ctx.__exit__(None, None, None)
