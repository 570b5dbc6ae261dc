"""`capport doctor`: checks that a host can run the gateway, with fixes."""

from capport.doctor.checks import run_checks
from capport.doctor.report import Check, Status, render

__all__ = ["Check", "Status", "render", "run_checks"]
