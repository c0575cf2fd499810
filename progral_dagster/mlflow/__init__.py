"""MLflow conventions of the service: tracking under the home, model logging with signature and
input example, registration under stable names, and champion promotion by alias.

(The package is named after what it holds; ``import mlflow`` inside it is the MLflow library.)
"""
