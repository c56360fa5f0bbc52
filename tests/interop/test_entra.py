"""Microsoft Entra ID end to end, offline: the loopback token service
(entra_util.py) and what ehdelta's credentials do with it."""
import base64
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from entra_util import Principal, ServiceTokenCredential, TokenService, unverified_claims


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_with_jwks(jwt, jwks):
    head, body, sig = jwt.split(".")
    h = json.loads(b64d(head))
    k = next(k for k in jwks["keys"] if k["kid"] == h["kid"])
    pub = rsa.RSAPublicNumbers(int.from_bytes(b64d(k["e"]), "big"),
                               int.from_bytes(b64d(k["n"]), "big")).public_key()
    pub.verify(b64d(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return h


@pytest.fixture
def svc():
    s = TokenService([Principal("app-1", "s3cret", "oid-1", federated_subject="system:serviceaccount:ns:sa")],
                     lifetime=600)
    yield s
    s.stop()


def test_token_service_signs_rs256_tokens_its_jwks_verifies(svc):
    cred = ServiceTokenCredential(svc, "app-1", "s3cret")
    at = cred.get_token("https://eventhubs.azure.net/.default")
    assert verify_with_jwks(at.token, svc.jwks())["alg"] == "RS256"
    c = unverified_claims(at.token)
    assert c["aud"] == "https://eventhubs.azure.net" and c["oid"] == "oid-1" and c["appid"] == "app-1"
    assert c["iss"] == f"https://sts.windows.net/{svc.tenant}/" and c["exp"] - c["nbf"] == 600


def test_token_service_refuses_as_entra_does(svc):
    url = f"{svc.authority}/{svc.tenant}/oauth2/v2.0/token"
    def post(**form):
        try:
            with urllib.request.urlopen(url, urllib.parse.urlencode(form).encode()) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
    base = dict(client_id="app-1", scope="https://eventhubs.azure.net/.default", grant_type="client_credentials")
    st, body = post(client_secret="wrong", **base)
    assert st == 401 and body["error"] == "invalid_client" and "AADSTS7000215" in body["error_description"]
    st, body = post(client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    client_assertion="a.b.c", **base)
    assert st == 401 and "AADSTS700213" in body["error_description"]
    st, body = post(client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    client_assertion=svc.federated_assertion(svc.principals["app-1"]), **base)
    assert st == 200 and body["token_type"] == "Bearer"
