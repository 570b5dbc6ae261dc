"""Signing and checking the captured return URL."""

import time

import pytest

from capport.errors import TokenError
from capport.tokens import TokenSigner, is_safe_return_url

SECRET = b"k" * 32


def test_token_round_trip() -> None:
    signer = TokenSigner(SECRET, lifetime=60)
    url = "http://origin.example/a?b=c"
    assert signer.verify(signer.sign(url)) == url


def test_token_from_other_key_rejected() -> None:
    token = TokenSigner(b"x" * 32, lifetime=60).sign("http://a.example/")
    with pytest.raises(TokenError, match="invalid"):
        TokenSigner(SECRET, lifetime=60).verify(token)


def test_tampered_token_rejected() -> None:
    signer = TokenSigner(SECRET, lifetime=60)
    token = signer.sign("http://a.example/")
    with pytest.raises(TokenError):
        signer.verify(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "\x00"])
def test_garbage_token_rejected(token: str) -> None:
    with pytest.raises(TokenError):
        TokenSigner(SECRET, lifetime=60).verify(token)


def test_expired_token_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = TokenSigner(SECRET, lifetime=60)
    token = signer.sign("http://a.example/")
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token)


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example/",
        "javascript:alert(1)",
        "data:text/html,x",
        "http://a.example/\r\nSet-Cookie: x=1",
        'http://"><script>/',
        "ftp://a.example/",
        "/relative",
        "http://[zz]/",
        "http://a.example:99999/",
    ],
)
def test_unsafe_urls_rejected(url: str) -> None:
    assert not is_safe_return_url(url)
    with pytest.raises(TokenError):
        TokenSigner(SECRET, lifetime=60).sign(url)


@pytest.mark.parametrize(
    "url", ["http://a.example/", "https://a.example:8443/p?q", "http://[2001:db8::1]/x"]
)
def test_safe_urls_accepted(url: str) -> None:
    assert is_safe_return_url(url)


def test_userinfo_url_rejected() -> None:
    assert not is_safe_return_url("http://origin.lab@evil.example/")
