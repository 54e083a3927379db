"""The HTTP API: ``create_app`` builds it, ``arqd serve`` runs it."""

from arqd.api.app import create_app

__all__ = ["create_app"]
