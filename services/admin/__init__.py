"""The admin API service (FastAPI): ``create_admin_app``."""

from services.admin.app import create_admin_app

__all__ = ["create_admin_app"]
