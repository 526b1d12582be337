"""Serving base shared by every profile's service: health, Prometheus metrics, body limits, timing,
JSON and streamed (server-sent events) routes, and the request log that monitoring reads."""
