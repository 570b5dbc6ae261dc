"""The user portal: splash and terms, Accept, status and logout pages."""

from capport.portal.app import create_portal_app

__all__ = ["create_portal_app"]
