"""The namespace laboratory: clients, a gateway and an upstream host on one machine."""

from capport.lab.build import down, up
from capport.lab.system import LabError
from capport.lab.topology import ROLES, Lab, load

__all__ = ["ROLES", "Lab", "LabError", "down", "load", "up"]
