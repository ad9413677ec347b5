"""What each training step reports, by name: its losses, whether they were finite, whether Ctrl-C was pressed.

Under torchrun every process's report is summed in one all-reduce: :meth:`StepReport.pack` lays the fields out
in one float64 tensor and :meth:`StepReport.unpack` reads them back. :class:`LossWindow` averages the losses of
the steps between two log rows and names them by their CSV column.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .distributed import DistInfo, all_reduce_sum
from .train_log import HEAD_LOSS_FIELDS


@dataclass
class StepReport:
    """One step's numbers on one process, or (after :meth:`summed`) the sum over all processes."""

    loss: torch.Tensor  # float64 scalar: the weighted total of the head losses
    head_losses: torch.Tensor  # float64 [heads]: main, then the auxiliary heads
    non_finite: float = 0.0  # 1 where a loss was inf/NaN (after summing: how many processes saw one)
    stop_requested: float = 0.0  # 1 where Ctrl-C was pressed (after summing: on how many processes)

    def pack(self) -> torch.Tensor:
        """``[loss, head losses..., non_finite, stop_requested]`` as one float64 tensor."""
        flags = torch.tensor([self.non_finite, self.stop_requested], dtype=torch.float64)
        return torch.cat([self.loss.reshape(1), self.head_losses, flags])

    @classmethod
    def unpack(cls, values: torch.Tensor) -> StepReport:
        """The report :meth:`pack` laid out in ``values``."""
        return cls(values[0], values[1:-2], float(values[-2]), float(values[-1]))

    def summed(self, info: DistInfo) -> StepReport:
        """Every field summed over the processes of ``info`` (this report for single-process runs)."""
        return StepReport.unpack(all_reduce_sum(self.pack(), info))


class LossWindow:
    """The mean losses of the steps since the last log row, per process, named by their CSV column."""

    def __init__(self) -> None:
        self._sums: torch.Tensor | None = None
        self.steps = 0

    def add(self, report: StepReport, world_size: int) -> None:
        """Count one step's losses, summed over ``world_size`` processes."""
        losses = torch.cat([report.loss.reshape(1), report.head_losses]) / world_size
        self._sums = losses if self._sums is None else self._sums + losses
        self.steps += 1

    def means(self) -> dict[str, float]:
        """``{"loss": ..., "loss_main": ..., "loss_aux16": ..., ...}`` over the window; then it starts again."""
        assert self._sums is not None, "no step since the last log row"
        mean = (self._sums / self.steps).tolist()
        self._sums, self.steps = None, 0
        return {"loss": mean[0], **dict(zip(HEAD_LOSS_FIELDS, mean[1:]))}
