"""Isolation backends for uploaded Python graders, the in-sandbox worker runtime, and worker pools."""
