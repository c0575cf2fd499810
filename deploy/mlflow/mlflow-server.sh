#!/usr/bin/env bash
# MLflow tracking server of a scale-out deployment: runs, metrics and the model registry in
# PostgreSQL, artifacts in an S3-compatible bucket, proxied by the server (clients need no
# bucket credentials: they log to mlflow-artifacts:/ through the server).
#
# Settings (environment; see mlflow.env.example):
#   MLFLOW_BACKEND_STORE_URI   postgresql+psycopg2://mlflow:PASSWORD@db-host:5432/mlflow (required;
#                              +psycopg2: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://progral-lake/mlflow-artifacts              (required)
#   MLFLOW_S3_ENDPOINT_URL     http://minio:9000 for MinIO/Ceph (unset: AWS S3)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   the bucket's credentials (server only)
#   MLFLOW_HOST (0.0.0.0), MLFLOW_PORT (5000), MLFLOW_WORKERS (4)
#   MLFLOW_ALLOWED_HOSTS       Host headers accepted, e.g. "mlflow.lab.example.org,mlflow:5000"
# Packages on the server host: mlflow==3.17.2 psycopg2-binary boto3 (deploy/README.md).
# The clients (Dagster code server, run pods) only set MLFLOW_TRACKING_URI=http://HOST:PORT.
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://user:password@host:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION=s3://bucket/prefix}"
args=(
  server
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI"
  --serve-artifacts
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION"
  --host "${MLFLOW_HOST:-0.0.0.0}"
  --port "${MLFLOW_PORT:-5000}"
  --workers "${MLFLOW_WORKERS:-4}"
)
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
  args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
fi
exec "${MLFLOW_BIN:-mlflow}" "${args[@]}"
