"""Which random sequence a sampler draws each trial's settings from, so that no two trials replay one.

A seeded Optuna sampler built in several processes replays the same sequence in each: every `--jobs`
worker, `sweep worker`, Ray task and resumed `sweep run` would propose the settings the first one did.
The rule here keeps plain Optuna's sequence where it can and leaves it where it must:

- A process whose trials follow one another (trial 0, 1, 2, ... as a fresh `--jobs 1` sweep asks them)
  keeps drawing from its sampler's one sequence, seeded with ``sampler.seed``: exactly what
  ``optuna.create_study(sampler=...(seed=S)).optimize(...)`` proposes.
- A process that asks a trial whose number does not follow its previous one (the first trial of a
  resumed sweep, or of any worker but the one that got trial 0; any trial after another worker's)
  draws from a new sampler seeded with ``trial_seed(S, number)``. Trial numbers are unique in a study,
  so no two processes ever start the same sequence, and each start is reproducible from S and the number.

QMC keeps ``S`` for its sequence's scrambling in every process (its points are spread over the study by a
counter the study holds); only its independent sampler, which draws the first trial, is reseeded.
"""

from __future__ import annotations

import hashlib

import optuna

from sweep.config import SweepConfig
from sweep.study.storage import make_sampler
from sweep.study.warm_start import prior_of, with_prior

SEED_BITS = 32  # numpy's RandomState takes seeds below 2**32


def trial_seed(seed: int, number: int) -> int:
    """The seed of the sequence a process starts at trial ``number`` of a sweep seeded ``seed``."""
    digest = hashlib.sha256(f"sweep-sampler:{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:SEED_BITS // 8], "little")


class SamplerStreams:
    """One process's rule for its study's sampler (see the module docstring): called once per trial asked,
    before the trial samples anything (Optuna samples lazily, at the trial's first suggest)."""

    def __init__(self, config: SweepConfig) -> None:
        self._config = config
        self._last: int | None = None  # the number of the trial this process asked last
        self.restarts = 0  # how many times a new sequence was started: what tests and benches look at

    def before_sampling(self, study: optuna.Study, number: int) -> None:
        follows = number == 0 if self._last is None else number == self._last + 1
        self._last = number
        seed = self._config.seed
        if follows or seed is None or self._config.sampler == "grid":
            # unseeded samplers draw their seed from the OS in every process; the grid sampler takes a
            # point no other trial holds, under the trial gate
            return
        study.sampler = with_prior(make_sampler(self._config, stream=trial_seed(seed, number)), prior_of(study.sampler))
        self.restarts += 1

    @property
    def samples_at_ask(self) -> bool:
        """Whether a trial must sample its settings while the trial gate is held: QMC reads and bumps a
        counter in the study when it samples, and two workers doing that at once take the same point."""
        return self._config.sampler == "qmc"
