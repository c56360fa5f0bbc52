"""A Microsoft Entra ID token service for tests, on loopback, so the whole
token path runs offline. It answers the request shapes the real endpoints take
and answers what they answer:

- POST /{tenant}/oauth2/v2.0/token (client credentials: client_secret, or a
  client_assertion of type jwt-bearer for workload identity);
- GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R with
  "Metadata: true" (IMDS);
- GET /msi/token?api-version=2019-08-01&resource=R with X-IDENTITY-HEADER
  (App Service IDENTITY_ENDPOINT).

Access tokens are RS256 JWTs signed with a key made per instance; jwks()
gives the public half in the shape Entra's discovery keys take
(https://login.microsoftonline.com/common/discovery/v2.0/keys). Claims follow
Entra's v1 access tokens: aud (the resource), iss
(https://sts.windows.net/{tid}/), iat, nbf, exp, oid, appid, tid, sub.

Run as a program (for shell suites):
    python3 entra_util.py --port-file F --jwks F [--lifetime S] [--client ID=SECRET:OID]...
prints nothing; writes the port once serving; SIGTERM stops it.
"""
import argparse
import base64
import http.server
import json
import os
import signal
import threading
import time
import urllib.parse
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TENANT = "72f988bf-0000-4000-8000-00000000e17a"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_int(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def unverified_claims(jwt):
    """The payload of a JWT, unchecked (tests look inside tokens they made)."""
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class SigningKey:
    """An RSA key that signs RS256 JWTs and publishes itself as a JWKS."""

    def __init__(self, kid=None):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or uuid.uuid4().hex[:16]

    def sign(self, claims, kid=None, alg="RS256"):
        header = {"typ": "JWT", "alg": alg, "kid": kid or self.kid}
        signing_input = (b64u(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64u(json.dumps(claims, separators=(",", ":")).encode()))
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64u(sig)

    def jwk(self):
        pub = self.key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "alg": "RS256",
                "n": b64u_int(pub.n), "e": b64u_int(pub.e)}

    def pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


class Principal:
    """An application (service principal or managed identity) the service knows."""

    def __init__(self, client_id, secret=None, oid=None, federated_subject=None):
        self.client_id = client_id
        self.secret = secret
        self.oid = oid or str(uuid.uuid4())
        self.federated_subject = federated_subject  # the "sub" a workload identity's assertion must carry


class TokenService:
    """The token endpoints on 127.0.0.1:<port>. lifetime: seconds each access
    token is valid. fail: HTTP statuses to answer, in order, before serving
    normally (503s for retry tests). requests: (method, path, form, headers)."""

    def __init__(self, principals=(), lifetime=3600, tenant=TENANT, identity_header="id-hdr",
                 managed=None):
        self.key = SigningKey()
        self.tenant = tenant
        self.lifetime = lifetime
        self.identity_header = identity_header
        self.principals = {p.client_id: p for p in principals}
        self.managed = managed  # the Principal managed identity requests get by default
        self.fail = []
        self.requests = []
        self.issued = []
        # the issuer of federated assertions (a Kubernetes cluster's OIDC issuer)
        self.cluster_key = SigningKey()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                outer.requests.append(("POST", self.path, form, dict(self.headers)))
                if outer.fail:
                    return self.answer(outer.fail.pop(0), {"error": "temporarily_unavailable"})
                self.answer(*outer._entra(self.path, {k: v[0] for k, v in form.items()}))

            def do_GET(self):
                outer.requests.append(("GET", self.path, {}, dict(self.headers)))
                if outer.fail:
                    return self.answer(outer.fail.pop(0), {"error": "temporarily_unavailable"})
                self.answer(*outer._managed(self.path, self.headers))

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.authority = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def jwks(self):
        return {"keys": [self.key.jwk()]}

    def write_jwks(self, path):
        with open(path, "w") as f:
            json.dump(self.jwks(), f)

    def issue(self, principal, resource, lifetime=None, **override):
        now = int(time.time())
        life = self.lifetime if lifetime is None else lifetime
        claims = {"aud": resource, "iss": f"https://sts.windows.net/{self.tenant}/", "iat": now,
                  "nbf": now, "exp": now + life, "oid": principal.oid, "appid": principal.client_id,
                  "tid": self.tenant, "sub": principal.oid, "ver": "1.0"}
        claims.update(override)
        tok = self.key.sign(claims)
        self.issued.append(tok)
        return tok, life

    def federated_assertion(self, principal, lifetime=3600):
        """The projected service account token a kubelet writes for principal."""
        now = int(time.time())
        return self.cluster_key.sign({"aud": "api://AzureADTokenExchange",
                                      "iss": "https://oidc.cluster.test/", "sub": principal.federated_subject,
                                      "iat": now, "nbf": now, "exp": now + lifetime})

    # Entra's answers (AADSTS codes as the service sends them)
    def _entra(self, path, form):
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
            return 404, {"error": "not_found"}
        if parts[0] != self.tenant:
            return 400, {"error": "invalid_request",
                         "error_description": f"AADSTS90002: Tenant '{parts[0]}' not found."}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": "AADSTS70003: The app requested an unsupported grant type."}
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return 400, {"error": "invalid_scope",
                         "error_description": f"AADSTS70011: The provided value for scope {scope} is not valid."}
        p = self.principals.get(form.get("client_id"))
        if p is None:
            return 400, {"error": "unauthorized_client",
                         "error_description": "AADSTS700016: Application not found in the directory."}
        if "client_secret" in form:
            if form["client_secret"] != p.secret:
                return 401, {"error": "invalid_client",
                             "error_description": "AADSTS7000215: Invalid client secret provided."}
        elif form.get("client_assertion_type") == ASSERTION_TYPE:
            if not self._assertion_ok(form.get("client_assertion", ""), p):
                return 401, {"error": "invalid_client",
                             "error_description": "AADSTS700213: No matching federated identity "
                                                  "record found for presented assertion."}
        else:
            return 401, {"error": "invalid_client",
                         "error_description": "AADSTS7000216: 'client_assertion', "
                                              "'client_secret' or 'request' is required."}
        tok, life = self.issue(p, scope[:-len("/.default")])
        return 200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life,
                     "access_token": tok}

    def _assertion_ok(self, assertion, p):
        try:
            head, body, sig = assertion.split(".")
            pub = self.cluster_key.key.public_key()
            pub.verify(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)),
                       f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            c = unverified_claims(assertion)
        except Exception:  # any malformed or wrongly signed assertion is refused alike
            return False
        return (c.get("sub") == p.federated_subject and c.get("aud") == "api://AzureADTokenExchange"
                and c.get("exp", 0) > time.time())

    def _managed(self, path, headers):
        u = urllib.parse.urlparse(path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        resource = q.get("resource")
        if u.path == "/metadata/identity/oauth2/token":
            if headers.get("Metadata") != "true":
                return 400, {"error": "invalid_request",
                             "error_description": "Required metadata header not specified"}
            want_api = "2018-02-01"
        elif u.path == "/msi/token":
            if headers.get("X-IDENTITY-HEADER") != self.identity_header:
                return 401, {"statusCode": 401, "message": "Unauthorized: the request has no valid "
                                                           "X-IDENTITY-HEADER"}
            want_api = "2019-08-01"
        else:
            return 404, {"error": "not_found"}
        if q.get("api-version") != want_api or not resource:
            return 400, {"error": "invalid_request",
                         "error_description": "Required query variable 'resource' or 'api-version' is missing"}
        p = self.principals.get(q.get("client_id")) if q.get("client_id") else self.managed
        if p is None:
            return 400, {"error": "invalid_request",
                         "error_description": "Identity not found"}
        tok, life = self.issue(p, resource)
        now = int(time.time())
        body = {"access_token": tok, "client_id": p.client_id, "expires_in": str(life),
                "expires_on": str(now + life), "ext_expires_in": str(life), "not_before": str(now),
                "resource": resource, "token_type": "Bearer"}
        if want_api == "2019-08-01":
            body = {k: body[k] for k in ("access_token", "expires_on", "resource", "token_type", "client_id")}
        return 200, body


class ServiceTokenCredential:
    """What azure-identity's credentials are to the official SDKs: get_token
    returns an AccessToken, here from a TokenService by client secret."""

    def __init__(self, service, client_id, secret):
        self.service, self.client_id, self.secret = service, client_id, secret
        self.calls = 0

    def get_token(self, *scopes, **kw):
        import urllib.request
        from azure.core.credentials import AccessToken
        self.calls += 1
        form = urllib.parse.urlencode({"client_id": self.client_id, "client_secret": self.secret,
                                       "scope": scopes[0], "grant_type": "client_credentials"}).encode()
        with urllib.request.urlopen(f"{self.service.authority}/{self.service.tenant}/oauth2/v2.0/token",
                                    form) as r:
            body = json.load(r)
        return AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))


def main():
    ap = argparse.ArgumentParser(description="a loopback Entra ID token service for tests")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--jwks", required=True, help="where to write the signing key's JWKS")
    ap.add_argument("--lifetime", type=int, default=3600)
    ap.add_argument("--client", action="append", default=[], metavar="ID=SECRET:OID")
    ap.add_argument("--managed", metavar="ID", help="the client id managed identity requests get")
    a = ap.parse_args()
    ps = []
    for c in a.client:
        cid, rest = c.split("=", 1)
        secret, oid = rest.split(":", 1)
        ps.append(Principal(cid, secret, oid, federated_subject=f"system:serviceaccount:default:{cid}"))
    by_id = {p.client_id: p for p in ps}
    svc = TokenService(ps, lifetime=a.lifetime, managed=by_id.get(a.managed))
    svc.write_jwks(a.jwks)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(svc.port))
    os.rename(tmp, a.port_file)
    stop.wait()
    svc.stop()


if __name__ == "__main__":
    main()
