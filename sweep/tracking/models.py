"""`sweep predict --file`: a sweep's best model, loaded as an MLflow pyfunc model, applied to a table of rows."""

from __future__ import annotations

from typing import Any

from sweep.errors import NotFoundError, SweepConfigError, TrackingError
from sweep.tracking.settings import process_settings


def predict_rows(model_uri: str, tracking_uri: str | None, rows: Any, source: str) -> Any:
    """The predictions of the model at ``model_uri`` (models:/<id>, runs:/...) for ``rows`` (a DataFrame read
    from ``source``): a DataFrame, Series or array, as the model's flavor returns them. Rows that do not fit the
    model's input schema are refused in one line naming the columns it expects."""
    with process_settings():  # MLflow reads some of them at import: import it inside
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException

        from sweep.errors import first_line
        from sweep.tracking.sqlite_file import check_existing_sqlite
        from sweep.tracking.store import check_server, resolved_tracking_uri
        from sweep.urls import redact_url

        uri = resolved_tracking_uri(tracking_uri)
        check_server(uri)
        check_existing_sqlite(uri)
        from sweep.tracking.publishing import global_tracking_uri

        with global_tracking_uri(uri):
            try:
                model = mlflow.pyfunc.load_model(model_uri)
            except (MlflowException, OSError) as error:
                if "RESOURCE_DOES_NOT_EXIST" in str(getattr(error, "error_code", "")):
                    raise NotFoundError(f"{model_uri} is not in MLflow at {redact_url(uri)}; run in the sweep's "
                                        f"folder or pass --tracking-uri") from None
                raise TrackingError(f"cannot load {model_uri} from MLflow at {redact_url(uri)} ({first_line(error)}); "
                                    f"run in the sweep's folder or pass --tracking-uri") from None
        expected = expected_columns(model)
        missing = [name for name in expected if name not in rows.columns]
        if missing:
            raise SweepConfigError(f"{source}: no column {missing[0]!r} ({len(missing)} of the model's "
                                   f"{len(expected)} input columns missing); the model expects: "
                                   f"{', '.join(expected)}")
        try:
            return model.predict(rows[expected] if expected else rows)
        except MlflowException as error:
            raise SweepConfigError(f"{source}: the rows do not fit the model's input ({first_line(error)}); "
                                   f"check the file's columns and values") from None


def expected_columns(model: Any) -> list[str]:
    """The named input columns of the model's signature (none when it was logged without one)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return []
    return [str(name) for name in schema.input_names()]
