"""Shared test setup: no telemetry (there is no outside network), every store under tmp_path."""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
