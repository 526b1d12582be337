"""Deployment (D): the prediction service, batch scoring, packaging and QA of the model."""
