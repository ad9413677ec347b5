"""What people watch during training: CSV logs, optional TensorBoard, and a PNG of loss and val mIoU."""
from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from typing import Any, Sequence

from ..errors import LitesegError
from ..utils.io import atomic_write_bytes
from ..utils.plots import figure


HEAD_LOSS_FIELDS = ["loss_main", "loss_aux16", "loss_aux32"]  # one per model output, in the model's order
TRAIN_FIELDS = ["iter", "epoch", "loss", *HEAD_LOSS_FIELDS, "lr", "images_per_s", "elapsed_s"]
EVAL_FIELDS = ["iter", "miou", "acc", "kappa", "best_miou", "best_iter"]  # then one iou_<class name> per class


def iou_field(class_name: str) -> str:
    """The eval-log column of a class's IoU: ``iou_`` + its name (commas and spaces as ``_``)."""
    return "iou_" + "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in class_name)


class CSVLog:
    """Append-only CSV; when a run resumes at iteration ``resume_iter``, rows logged after it are dropped first."""

    def __init__(self, path: str | Path, fields: Sequence[str], resume_iter: int | None = None) -> None:
        self.path, self.fields = Path(path), list(fields)
        if self.path.exists() and resume_iter is not None:
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(float(r["iter"])) <= resume_iter]
            self._rewrite(rows)
        elif not self.path.exists() or resume_iter is None:
            self._rewrite([])

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, buf.getvalue().encode())

    def write(self, row: dict[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


class RunLogs:
    """The logs of one run on rank 0 (elsewhere all None): ``train_log.csv``, ``eval_log.csv`` (a column per
    class IoU) and, with ``tensorboard``, a TensorBoard writer. ``resume_iter``: rows after it are dropped."""

    def __init__(self, output_dir: Path, class_names: Sequence[str], resume_iter: int | None, tensorboard: bool,
                 is_main: bool) -> None:
        eval_fields = EVAL_FIELDS + [iou_field(n) for n in class_names]
        self.train = CSVLog(output_dir / "train_log.csv", TRAIN_FIELDS, resume_iter) if is_main else None
        self.eval = CSVLog(output_dir / "eval_log.csv", eval_fields, resume_iter) if is_main else None
        self.writer = tensorboard_writer(output_dir / "tensorboard") if tensorboard and is_main else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_csv(path: str | Path) -> list[dict[str, float]]:
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def require_tensorboard() -> None:
    """Fail early, with the install command, when the optional ``tensorboard`` package is missing."""
    if importlib.util.find_spec("tensorboard") is None:
        raise LitesegError("train.tensorboard=true needs the tensorboard package: pip install 'liteseg[tensorboard]' "
                           "(or set train.tensorboard=false; the CSV logs are always written)")


def tensorboard_writer(log_dir: str | Path) -> Any:
    """A TensorBoard ``SummaryWriter`` writing to ``log_dir``."""
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


def plot_curves(train_csv: str | Path, eval_csv: str | Path, out: str | Path) -> Path:
    """PNG with the training loss and val mIoU over iterations, and below them the IoU of each class."""
    train, evals = read_csv(train_csv), read_csv(eval_csv)
    classes = [k for k in (evals[0] if evals else {}) if k.startswith("iou_")]
    fig = figure(8, 8 if classes else 4.5, dpi=100, purpose="train.plot (training curves)")
    ax = fig.add_subplot(2, 1, 1) if classes else fig.add_subplot()
    if classes:
        per_class = fig.add_subplot(2, 1, 2)
        for key in classes:
            per_class.plot([r["iter"] for r in evals], [r.get(key, float("nan")) for r in evals], "o-", ms=3,
                           lw=1, label=key[4:])
        per_class.set_xlabel("iteration")
        per_class.set_ylabel("val IoU per class")
        per_class.grid(alpha=0.3)
        per_class.legend(fontsize=7, ncol=max(1, len(classes) // 8), loc="best")
    if train:
        ax.plot([r["iter"] for r in train], [r["loss"] for r in train], color="tab:blue", lw=1, label="train loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("train loss", color="tab:blue")
    ax.grid(alpha=0.3)
    if evals:
        ax2 = ax.twinx()
        ax2.plot([r["iter"] for r in evals], [r["miou"] for r in evals], "o-", color="tab:red", label="val mIoU")
        ax2.set_ylabel("val mIoU", color="tab:red")
    ax.set_title("liteseg training")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)
