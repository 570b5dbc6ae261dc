"""The operator's dashboard: static pages and scripts served by the admin listener."""

from capport.dashboard.routes import CONTENT_SECURITY_POLICY, mount_dashboard

__all__ = ["CONTENT_SECURITY_POLICY", "mount_dashboard"]
