"""What a sweep publishes on its parent run at the end: plots, the best model as its trainer says, its registration.

The trainer says how (sweep/records.py ModelPublishing): a pyfunc model its recipe makes of the best trial's
model.json, or the model the best trial's own code logged. This module knows those two kinds, not the trainers.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import mlflow
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException

from sweep.errors import TrackingError, first_line
from sweep.records import BestTrial, FrontMember, ModelPublishing, PublishedModel, PyfuncRecipe
from sweep.tracking.parent import TRIAL_MODEL_TAG, ParentRun
from sweep.tracking.store import MAX_TAG_CHARS


def model_name(sweep: str) -> str:
    """The logged model's name, after its sweep (`demo-best`): MLflow's model list tells sweeps apart.
    A sweep name may hold '.', which MLflow refuses in a model name."""
    return sweep.replace(".", "-") + "-best"


def model_uri(parent_run_id: str, sweep: str) -> str:
    """Where the parent's pyfunc model loads from: the parent's newest logged model of that name."""
    return f"runs:/{parent_run_id}/{model_name(sweep)}"


class Publisher:
    """Plots and the best model on the parent run; failures come back in what it returns, never raised."""

    def __init__(self, parent: ParentRun) -> None:
        self.parent = parent
        self.store = parent.store
        self.warming: threading.Thread | None = None

    def warm_up(self) -> None:
        """Load, on a thread while the trials run, what logging a pyfunc model loads on its first use at the end:
        mlflow.pyfunc, and MLflow's map of the installed packages to their modules, which its requirements check
        builds by reading every package's metadata (the largest part of logging the model). Nothing here is
        needed for the end to work: a failure only leaves the work to the end, which waits for the thread first
        (MLflow builds that map without a lock)."""

        def load() -> None:
            with contextlib.suppress(Exception):
                import mlflow.pyfunc  # noqa: F401
                from mlflow.utils import requirements_utils

                # a private function of MLflow's: without it, the map is simply built at the end
                build_map = getattr(requirements_utils, "_init_packages_to_modules_map", None)
                if build_map is not None:
                    build_map()

        if self.warming is None:
            self.warming = threading.Thread(target=load, name="sweep-pyfunc-warm-up", daemon=True)
            self.warming.start()

    def settle(self) -> None:
        """Wait for warm_up's thread, if it runs: nothing is left half-loaded (before this process forks)."""
        if self.warming is not None:
            self.warming.join()

    def record_plots(self, images: Mapping[str, bytes], skipped: Mapping[str, str]) -> list[str]:
        """SVGs under plots/ on the parent, overwriting older ones of the same name, and NOTES.txt.

        One log_artifacts call for the folder: the local and the proxied (mlflow-artifacts) stores
        both overwrite a file logged again under the same path. Returns the plot files logged.
        """
        parent = self.parent.id()
        folder = self.store.scratch / "plots"
        folder.mkdir(exist_ok=True)
        for name, document in images.items():
            (folder / name).write_bytes(document)
        self.remove_older_pngs(parent, images)
        lines = [f"made: {name}" for name in images]
        lines += [f"skipped: {name}: {why}" for name, why in skipped.items()]
        (folder / "NOTES.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.store.repository(parent).log_artifacts(str(folder), "plots")
        self.store.client.set_tag(parent, "sweep.plots_skipped",
                                  "; ".join(f"{name}: {why}" for name, why in skipped.items())[:MAX_TAG_CHARS]
                                  or "none")
        return list(images)

    def remove_older_pngs(self, parent: str, images: Mapping[str, bytes]) -> None:
        """A sweep started by a version of sweep that drew PNGs and resumed by this one: its old plots/*.png would
        show the study as it was then, beside the new SVGs. Removed where the artifact store allows it; a store
        that refuses keeps them (pictures are never worth failing the end over)."""
        stems = {Path(name).stem for name in images}
        with contextlib.suppress(Exception):
            repository = self.store.repository(parent)
            for entry in repository.list_artifacts("plots"):
                path = Path(entry.path)
                if not entry.is_dir and path.suffix == ".png" and path.stem in stems:
                    repository.delete_artifacts(entry.path)

    def record_front(self, members: list[FrontMember]) -> None:
        """The Pareto front on the parent: tag front.trials (its trial numbers, best first on the first objective)
        and pareto.json (each member's trial, run id, params and objective values), replacing older ones."""
        parent = self.parent.id()
        document = {"front": [member.as_dict() for member in members]}
        self.store.log_text(parent, json.dumps(document, indent=2), "pareto.json", None)
        numbers = ",".join(str(member.trial) for member in members)
        if len(numbers) > MAX_TAG_CHARS:  # a front of thousands: the tag says where the rest is
            numbers = numbers[:MAX_TAG_CHARS - 40].rsplit(",", 1)[0] + ",... (all in pareto.json)"
        self.store.client.log_batch(parent, tags=[RunTag("front.trials", numbers),
                                                  RunTag("front.size", str(len(members)))])

    def publish_model(self, best: BestTrial | None, register: str | None,
                      publishing: ModelPublishing) -> PublishedModel:
        """The best trial's model on the parent, as the trainer's ``publishing`` says; registered as ``register``
        if given.

        With a pyfunc recipe, the best trial's model.json becomes the parent's pyfunc model `<sweep>-best`;
        without one, the model the best trial logged itself (autolog, log_model: its child run's
        sweep.model_uri tag) is pointed at, and a best trial that logged none leaves the parent without a
        model, quietly. Logged at the end of an invocation, and only when the best trial
        changed since it was last logged: trials never pay for it. Only the parent's owner (`sweep
        run`) logs it: a worker ending the same sweep at the same moment would log it a second time.
        A failure comes back as a warning, never an exception.
        """
        if best is None:
            return PublishedModel(warning=f"no completed trial, so no model to register as {register!r}"
                                  if register else None)
        if not self.parent.owns:
            return PublishedModel()  # the owner publishes; the study keeps what it published
        client, parent = self.store.client, self.parent.id()
        recipe = publishing.pyfunc
        try:
            if recipe is not None:
                (uri, model_id), source_run = self.pyfunc_of(best, recipe), parent
            else:
                logged = self.trial_model(best)
                if logged is None:
                    self.forget_model()
                    return PublishedModel(warning=f"the best trial {best.number} logged no MLflow model, so "
                                                  f"nothing was registered as {register!r}" if register else None)
                model_id, source_run = logged
                uri = f"models:/{model_id}"
                self.point_at(uri, model_id, best.number)
        except Exception as error:  # MLflow, pandas or the model file: the sweep's result stands without it
            what = "logged as a pyfunc model" if recipe is not None else "recorded on the parent run"
            return PublishedModel(warning=f"the best model was not {what}: {first_line(error)}")
        published = PublishedModel(uri, best.number)
        if register is None:
            return published
        try:
            version = self.register(model_id, register, source_run)
        except Exception as error:
            return replace(published, warning=f"the best model was not registered as {register!r}: "
                                              f"{first_line(error)}")
        client.set_tag(parent, "best.registered_model", version)
        return replace(published, registered=version)

    def pyfunc_of(self, best: BestTrial, recipe: PyfuncRecipe) -> tuple[str, str]:
        """The best trial's model.json made a pyfunc model by ``recipe`` on the parent, logged unless the
        parent holds it already; returns its URI and model id."""
        client, parent = self.store.client, self.parent.id()
        tags = client.get_run(parent).data.tags
        if tags.get("best.model_id") is None or tags.get("best.model_trial") != str(best.number):
            model_json = self._model_json(best, tags)
            tags = client.get_run(parent).data.tags  # again: another process may have logged it meanwhile
            if tags.get("best.model_id") is None or tags.get("best.model_trial") != str(best.number):
                model_id = self.log_pyfunc(model_json, best.number, recipe)
                self.point_at(model_uri(parent, self.store.identity.name), model_id, best.number)
                return model_uri(parent, self.store.identity.name), model_id
        return model_uri(parent, self.store.identity.name), tags["best.model_id"]

    def trial_model(self, best: BestTrial) -> tuple[str, str] | None:
        """(model id, child run id) of the model the best trial's own code logged, or None when it logged none."""
        if best.run_id is None:
            return None
        uri = self.store.client.get_run(best.run_id).data.tags.get(TRIAL_MODEL_TAG, "")
        if not uri.startswith("models:/"):
            return None
        return uri.removeprefix("models:/"), best.run_id

    def point_at(self, uri: str, model_id: str, trial: int) -> None:
        """The parent's best.model_* tags name this model; a registered version of an older best no longer applies."""
        client, parent = self.store.client, self.parent.id()
        tags = client.get_run(parent).data.tags
        if tags.get("best.model_id") == model_id and tags.get("best.model_trial") == str(trial):
            return
        client.log_batch(parent, tags=[RunTag("best.model_uri", uri), RunTag("best.model_id", model_id),
                                       RunTag("best.model_trial", str(trial))])
        if "best.registered_model" in tags:  # that version holds the previous best's model
            client.delete_tag(parent, "best.registered_model")

    def forget_model(self) -> None:
        """The best trial has no model: the parent must not go on naming an older best's."""
        client, parent = self.store.client, self.parent.id()
        tags = client.get_run(parent).data.tags
        for name in ("best.model_uri", "best.model_id", "best.model_trial", "best.registered_model"):
            if name in tags:
                client.delete_tag(parent, name)

    def log_pyfunc(self, model_json: str, trial: int, recipe: PyfuncRecipe) -> str:
        """Log the recipe's PythonModel file "as code", with its sources and ``model_json``; returns the model id.

        Requirements are given, not inferred: inference would load the model in a subprocess (seconds).
        The input example is checked against the signature by MLflow when it logs the model.
        """
        import warnings

        self.settle()
        import mlflow.pyfunc
        import pandas as pd

        folder = self.store.scratch / "pyfunc"
        folder.mkdir(exist_ok=True)
        (folder / "model.json").write_text(model_json, encoding="utf-8")
        example = pd.DataFrame(recipe.input_example)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "integer columns cannot hold missing values": outputs never miss
            signature = mlflow.models.infer_signature(example, pd.DataFrame(recipe.output_example))
        # start_run on the existing parent, so the model is linked to it; closing the parent sets its real status
        with global_tracking_uri(self.store.uri), mlflow.start_run(run_id=self.parent.id()):
            info = mlflow.pyfunc.log_model(
                name=model_name(self.store.identity.name), python_model=recipe.model_code,
                artifacts={recipe.artifact_key: str(folder / "model.json")},
                code_paths=copied_sources(recipe.code, folder / "code"), signature=signature, input_example=example,
                pip_requirements=[f"mlflow=={mlflow.__version__}", *recipe.requirements],
                tags={"sweep.name": self.store.identity.name, "sweep.trial": str(trial)})
        return info.model_id

    def register(self, model_id: str, name: str, source_run: str | None = None) -> str:
        """A new version of registered model ``name`` (linked to ``source_run``, else the parent); returns
        "NAME/VERSION"."""
        client = self.store.client
        try:
            client.create_registered_model(name, description="Best models of sweep runs (sweep run --register).")
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(name, f"models:/{model_id}", run_id=source_run or self.parent.id(),
                                              model_id=model_id, tags={"sweep.name": self.store.identity.name})
        return f"{name}/{version.version}"

    def _model_json(self, best: BestTrial, parent_tags: Mapping[str, str]) -> str:
        """The best trial's model.json: known from its "best" message, else from its child run or the parent."""
        if best.model_json is not None:
            return best.model_json
        if self.parent.best_model is not None and self.parent.best_model[0] == best.number:
            return self.parent.best_model[1]
        if best.run_id is not None:
            return self.store.download_text(best.run_id, "model.json")
        if parent_tags.get("best.trial") == str(best.number):
            return self.store.download_text(self.parent.id(), "best/model.json")
        raise TrackingError(f"trial {best.number} has no child run to take its model.json from")


@contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent API (start_run, log_model) reads a process-wide tracking URI, which set_tracking_uri
    also copies into MLFLOW_TRACKING_URI: set it for one block, then put back what was there."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]  # None unsets it, as MLflow documents


def copied_sources(files: Mapping[str, str], folder: Path) -> list[str]:
    """``files`` (path under ``folder`` -> the file to copy there) copied into ``folder``; returns the folder's
    top-level entries, as MLflow's code_paths takes them."""
    for relative, source in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return sorted(str(folder / top) for top in {Path(relative).parts[0] for relative in files})
