"""`train`: one training run of the core trainer (the chapter's train.py); `--mlflow` logs it.

It lives in the sweep package, not in trainer/, because `--mlflow` needs the tracking layer and the
trainer imports nothing from the sweep. Errors and exit codes are the ones `sweep` uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sweep.cli import PlainUsage, VersionOption, errors_to_exit
from sweep.cli_entry import run_app
from trainer.config import TrainConfig, read_settings_file
from trainer.data import BUNDLED, load_corpus, split
from trainer.errors import ModelFileError
from trainer.model import Model
from trainer.train import train

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Train the bag-of-words sentiment classifier once, or predict with a saved model.")


@app.callback(invoke_without_command=True)
def train_command(
    ctx: typer.Context,
    lr: Annotated[float | None, typer.Option(help="Learning rate (> 0). [default: 0.5]")] = None,
    epochs: Annotated[int | None, typer.Option(help="Gradient-descent epochs (>= 1). [default: 300]")] = None,
    vocab_size: Annotated[int | None, typer.Option(help="Most frequent tokens kept. [default: 2000]")] = None,
    l2: Annotated[float | None, typer.Option(help="L2 penalty on the weights. [default: 0.0001]")] = None,
    ngrams: Annotated[int | None, typer.Option(help="1 = words, 2 = words + word pairs. [default: 1]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the train/validation/test split. [default: 0]")] = None,
    data: Annotated[str | None, typer.Option(help="CSV/TSV/JSONL file, or 'bundled'. [default: bundled]")] = None,
    text_column: Annotated[str | None, typer.Option(help="Column holding the text. [default: text]")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column holding the label. [default: label]")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file of these settings; flags win.")] = None,
    out: Annotated[Path, typer.Option(help="Where to save the model.")] = Path("model.json"),
    mlflow: Annotated[bool, typer.Option("--mlflow", is_flag=True, help="Log the run to MLflow.")] = False,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "sentiment",
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI. [default: MLflow's]")] = None,
    version: VersionOption = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    flags = {"lr": lr, "epochs": epochs, "vocab_size": vocab_size, "l2": l2, "ngrams": ngrams, "seed": seed,
             "data": data, "text_column": text_column, "label_column": label_column}
    with errors_to_exit():
        _run(flags, config, out, experiment if mlflow else None, tracking_uri)


def _run(flags: dict[str, Any], config_file: Path | None, out: Path, experiment: str | None,
         tracking_uri: str | None) -> None:
    settings = read_train_settings(config_file) if config_file is not None else {}
    settings.update({key: value for key, value in flags.items() if value is not None})
    data_source = str(settings.pop("data", BUNDLED))
    text_column, label_column = settings.pop("text_column", "text"), settings.pop("label_column", "label")
    train_config = TrainConfig.from_mapping(settings)  # before reading data: a bad flag fails at once
    corpus = load_corpus(data_source, text_column=text_column, label_column=label_column)
    parts = split(corpus, train_config.seed)
    sizes = parts.sizes
    typer.echo(f"examples: {len(corpus)}  train={sizes['n_train']}  validation={sizes['n_val']}  "
               f"test={sizes['n_test']}")

    curves: dict[str, list[tuple[int, float]]] = {}
    eval_every = max(1, train_config.epochs // 100)  # ~100 curve points whatever the epoch count

    def record(epoch: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            curves.setdefault(name, []).append((epoch, value))

    result = train(train_config, parts, record if experiment else None, eval_every=eval_every)
    typer.echo(f"vocab size: {result.vocab_size}")
    for name in ("train", "val", "test"):
        typer.echo(f"{name}_accuracy: {result.metrics[f'{name}_accuracy']:.3f}")
    try:
        result.model.save(out)
    except OSError as error:
        raise ModelFileError(f"{out}: cannot save model ({error.strerror}); choose another --out") from error
    typer.echo(f"saved model -> {out}")
    if experiment is not None:
        # imported here: MLflow is slow to import and plain `train` never needs it
        from sweep.tracking.training_run import log_training_run

        run_id = log_training_run(result, train_config, curves, out, experiment=experiment,
                                  tracking_uri=tracking_uri, data_source=data_source,
                                  data_fingerprint=corpus.fingerprint())  # raises TrackingError: exit 1
        typer.echo(f"logged run {run_id} to MLflow (experiment {experiment!r})")


SWEEP_CONFIG_KEYS = {"trainer", "fixed", "objective", "space"}  # what sets a sweep config apart from train settings


def read_train_settings(file: Path) -> dict[str, Any]:
    """`train --config`: a file of train settings, or a sweep config of the built-in trainer that fixes every
    setting (`sweep best --format yaml` writes one): its fixed: settings and its data."""
    import yaml

    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, OverflowError, RecursionError, yaml.YAMLError):
        document = None  # read_settings_file reports what is wrong with it
    if not (isinstance(document, dict) and SWEEP_CONFIG_KEYS & set(document)):
        return read_settings_file(file)
    from sweep.config import load_config
    from sweep.errors import SweepConfigError

    config = load_config(file)
    if not config.trainer.builtin:
        raise SweepConfigError(f"{file}: a sweep config of the function {config.trainer.describe()}; train runs only "
                               f"the built-in trainer: run it with sweep run --config {file}")
    if config.space:
        raise SweepConfigError(f"{file}: a sweep config that tunes {', '.join(config.space)}; train takes one value "
                               f"each: sweep best --format yaml > best.yaml writes one")
    return {**config.fixed, "data": config.data, "text_column": config.text_column,
            "label_column": config.label_column}


@app.command("predict", cls=PlainUsage)
def predict_command(
    model_file: Annotated[Path, typer.Argument(metavar="MODEL", help="A model.json saved by train or sweep.")],
    texts: Annotated[list[str], typer.Argument(metavar="TEXT", help="Texts to classify.")],
) -> None:
    """Print label and probability of the positive class for each text."""
    with errors_to_exit():
        model = Model.load(model_file)
    labels, proba = model.predict(texts)
    for text, label, p in zip(texts, labels.tolist(), proba.tolist()):
        typer.echo(f"{'positive' if label else 'negative'}\t{p:.3f}\t{text}")


def main() -> None:
    run_app(app, "train")


if __name__ == "__main__":
    main()
