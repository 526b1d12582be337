"""Version Control of models: MLflow tracking, registration and promotion."""
