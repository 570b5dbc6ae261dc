"""The intercepting responder, which sends 511 to redirected port-80 requests."""

from capport.intercept.actions import Action, classify
from capport.intercept.request import InterceptedRequest, capture_url, parse_request
from capport.intercept.responses import ResponseBuilder
from capport.intercept.server import Limits, Responder, ResponderStats

__all__ = [
    "Action",
    "InterceptedRequest",
    "Limits",
    "Responder",
    "ResponderStats",
    "ResponseBuilder",
    "capture_url",
    "classify",
    "parse_request",
]
