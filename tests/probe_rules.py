"""How each operating system reads the answer to its portal probe.

A pure table of the documented detection rules, so tests can check what the
gateway sends against what each system concludes from it:

- "portal": the system opens its sign-in window or notification;
- "online": the system takes the network as open;
- "offline": the system takes the network as having no connectivity and
  shows no sign-in window.

Sources, per system:

- android: AOSP NetworkMonitor, CaptivePortalProbeResult: 204 is success,
  other codes from 200 to 399 are a portal, anything else has failed. A 200
  with an empty body is counted as a 204.
- chrome: ChromeOS shill, as the Wireless Broadband Alliance's
  captive-behavior notes describe it: any answer other than 204 is a portal.
- apple: captive.apple.com must answer 200 with "Success" in the body;
  anything else opens the Captive Network Assistant.
- windows: connecttest.txt (ncsi.txt on older Windows) must be 200 with the
  exact text; a different answer makes Windows assume a portal and open a
  browser at www.msftconnecttest.com/redirect.
- firefox: the body must equal the expected content
  (captivedetect.canonicalContent, or "success\\n" for success.txt);
  otherwise Firefox reports a portal.
- networkmanager: the body must be the configured response ("NetworkManager
  is online\\n"), as Ubuntu Core's network-manager documentation describes
  the setting. NOTE: that an answer with another body counts as a portal is
  NetworkManager's reported behaviour, not checked against its source.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """A probe's answer as a client reads it."""

    status: int
    body: bytes = b""
    location: str | None = None


def verdict(system: str, answer: Answer, expected_body: bytes) -> str:
    """Return what system concludes from answer: portal, online or offline."""
    rule = RULES[system]
    return rule(answer, expected_body)


def _android(answer: Answer, expected_body: bytes) -> str:
    if answer.status == 204 or (answer.status == 200 and not answer.body):
        return "online"
    if 200 <= answer.status <= 399:
        return "portal"
    return "offline"


def _chrome(answer: Answer, expected_body: bytes) -> str:
    return "online" if answer.status == 204 else "portal"


def _apple(answer: Answer, expected_body: bytes) -> str:
    if answer.status == 200 and b"Success" in answer.body:
        return "online"
    return "portal"


def _exact_body(answer: Answer, expected_body: bytes) -> str:
    if answer.status == 200 and answer.body == expected_body:
        return "online"
    return "portal"


RULES = {
    "android": _android,
    "chrome": _chrome,
    "apple": _apple,
    "windows": _exact_body,
    "firefox": _exact_body,
    "networkmanager": _exact_body,
}
