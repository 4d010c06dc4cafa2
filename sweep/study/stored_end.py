"""What the background publisher of a finished sweep reads and writes of its study: the plots, and the model it
published (for `sweep best`).

The publisher is a copy of the sweep's tracking process (sweep/tracking/operations.py PublishAndClose) that
outlives `sweep run`: it has nothing of the study open, so it opens the storage by its location. The request that
carries this object is unpickled by the tracking process: this module imports Optuna only when it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweep.locations import StorageLocation
from sweep.records import PublishedModel

if TYPE_CHECKING:
    from sweep.study.plots import StudyPlots
    from sweep.study.sweep_study import SweepStudy


@dataclass
class StoredSweep:
    """Sweep ``name`` of ``location``, opened at its first use."""

    location: StorageLocation
    name: str

    def __post_init__(self) -> None:
        self._study: SweepStudy | None = None

    def __getstate__(self) -> dict[str, object]:
        return {"location": self.location, "name": self.name}  # never an open storage

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._study = None

    def plots(self) -> StudyPlots:
        """The plots of the sweep's study, as its end draws them (sweep/study/plots.py); never raises."""
        from sweep.study.plots import plots_or_why_not

        return plots_or_why_not(lambda: self.study().plots())

    def remember_model(self, model: PublishedModel) -> None:
        """The published model's URI, trial and registered version in the study, for `sweep best`."""
        self.study().remember_model(model)

    def study(self) -> SweepStudy:
        if self._study is None:
            from sweep.study.opening import open_sweep
            from sweep.study.sweep_study import SweepStudy

            self._study = SweepStudy.read(open_sweep(self.location, self.name))
        return self._study
