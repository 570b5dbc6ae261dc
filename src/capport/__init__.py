"""capport: a captive-portal gateway for Linux."""

__version__ = "0.1.0"
