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


# ---- ehdelta and the official SDK against ehemu with SAS disabled ----

import os  # noqa: E402
import subprocess  # noqa: E402

from conftest import EHDELTA, free_port, wait_until  # noqa: E402
from emu_util import KEY, Emu  # noqa: E402
from entra_util import TENANT  # noqa: E402

SECRETS = {"app-owner": "owner-secret-1", "app-send": "send-secret-2", "app-recv": "recv-secret-3"}


class Entra:
    """A token service with three applications and an ehemu that accepts its
    tokens only (--disable-local-auth), each application granted one role."""

    def __init__(self, tmp_path, lifetime=3600, emu_args=()):
        self.tmp = tmp_path
        self.svc = TokenService([Principal(cid, sec, f"oid-{cid}",
                                           federated_subject=f"system:serviceaccount:default:{cid}")
                                 for cid, sec in SECRETS.items()], lifetime=lifetime)
        self.svc.managed = self.svc.principals["app-owner"]
        jwks = tmp_path / "jwks.json"
        self.svc.write_jwks(jwks)
        self.emu = Emu(tmp_path, "--jwks", str(jwks), "--jwt-issuer",
                       f"https://sts.windows.net/{TENANT}/", "--disable-local-auth",
                       "--role", "oid-app-owner=owner", "--role", "app-send=sender",
                       "--role", "oid-app-recv=Azure Event Hubs Data Receiver", *emu_args)
        self.cs = tmp_path / "cs"
        self.cs.write_text(f"Endpoint=sb://127.0.0.1:{self.emu.amqp};UseDevelopmentEmulator=true;"
                           f"EntityPath=eh1\n")
        for cid, sec in SECRETS.items():
            (tmp_path / f"{cid}.secret").write_text(sec + "\n")

    def args(self, cid="app-owner"):
        return ["--connection-string-file", str(self.cs), "--auth", "client-secret", "--tenant-id",
                TENANT, "--client-id", cid, "--client-secret-file", str(self.tmp / f"{cid}.secret"),
                "--timeout", "10s"]

    def env(self, **kw):
        e = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
        e["AZURE_AUTHORITY_HOST"] = self.svc.authority
        e.update(kw)
        return e

    def ehdelta(self, *argv, env=None, timeout=60):
        return subprocess.run([EHDELTA, *argv], capture_output=True, text=True, timeout=timeout,
                              env=env or self.env())

    def stop(self):
        self.emu.stop()
        self.svc.stop()


@pytest.fixture
def entra(tmp_path):
    e = Entra(tmp_path)
    yield e
    e.stop()


def no_secret(p, *more):
    out = p.stdout + p.stderr
    for s in list(SECRETS.values()) + list(more):
        assert s not in out
    return out


def test_send_and_tail_with_client_secret_against_sas_disabled_emu(entra):
    p = entra.ehdelta("send", *entra.args(), "--partition", "1", "--count", "20", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "accepted 20, failed 0" in p.stdout
    p = entra.ehdelta("tail", *entra.args("app-recv"), "-p", "1", "--from", "earliest", "--count", "20")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 20
    p = entra.ehdelta("status", *entra.args("app-send"))
    assert p.returncode == 0, p.stderr
    no_secret(p, *entra.svc.issued)
    # the tokens were put as type jwt for sb://host/hub (every request the service saw)
    assert all(r[2].get("scope") == ["https://eventhubs.azure.net/.default"]
               for r in entra.svc.requests)


def test_sas_refused_when_local_auth_disabled(entra):
    (entra.tmp / "sas").write_text(entra.emu.conn_str() + ";EntityPath=eh1\n")
    p = entra.ehdelta("send", "--connection-string-file", str(entra.tmp / "sas"), "--count", "1",
                      "--no-progress", "--timeout", "10s")
    assert p.returncode == 3, p.stderr
    assert "LocalAuthDisabled" in p.stderr
    no_secret(p, KEY)


def test_missing_role_refused_with_the_services_text(entra):
    p = entra.ehdelta("send", *entra.args("app-recv"), "--count", "1", "--no-progress")
    assert p.returncode == 3, p.stderr
    assert "amqp:unauthorized-access" in p.stderr or "unauthorized" in p.stderr.lower()
    assert "'Send' claim(s) are required" in p.stderr
    p = entra.ehdelta("tail", *entra.args("app-send"), "-p", "0", "--from", "earliest", "--count", "1")
    assert p.returncode == 3, p.stderr
    assert "'Listen' claim(s) are required" in p.stderr
    no_secret(p, *entra.svc.issued)


def test_wrong_audience_and_expired_tokens_refused(tmp_path):
    e = Entra(tmp_path, emu_args=("--jwt-audience", "https://other.example"))
    try:
        p = e.ehdelta("send", *e.args(), "--count", "1", "--no-progress")
        assert p.returncode == 3, p.stderr
        assert "InvalidAudience" in p.stderr
        no_secret(p, *e.svc.issued)
    finally:
        e.stop()
    (tmp_path / "x").mkdir()
    e = Entra(tmp_path / "x", lifetime=-60)
    try:
        p = e.ehdelta("send", *e.args(), "--count", "1", "--no-progress")
        assert p.returncode == 3, p.stderr
        assert "ExpiredToken: The token is expired." in p.stderr
        no_secret(p, *e.svc.issued)
    finally:
        e.stop()


def test_token_endpoint_failures_are_named(entra):
    # wrong secret: Entra's refusal, exit 3
    (entra.tmp / "bad.secret").write_text("not-the-secret\n")
    argv = entra.args()
    argv[argv.index("--client-secret-file") + 1] = str(entra.tmp / "bad.secret")
    p = entra.ehdelta("send", *argv, "--count", "1", "--no-progress")
    assert p.returncode == 3, p.stderr
    assert (f"client secret: token endpoint {entra.svc.authority}/{TENANT}/oauth2/v2.0/token "
            "answered HTTP 401 (invalid_client: AADSTS7000215") in p.stderr
    no_secret(p, "not-the-secret")
    # unreachable: retried, then exit 5 naming the endpoint
    dead = f"http://127.0.0.1:{free_port()}"
    p = entra.ehdelta("send", *entra.args(), "--count", "1", "--no-progress",
                      env=entra.env(AZURE_AUTHORITY_HOST=dead), timeout=120)
    assert p.returncode == 5, p.stderr
    assert f"token endpoint {dead}/{TENANT}/oauth2/v2.0/token unreachable after 4 attempts" in p.stderr
    no_secret(p)
    # a malformed federated token file: exit 2, the file named, its content not shown
    fed = entra.tmp / "fed"
    fed.write_text("this-is-not-a-jwt-secretish\n")
    p = entra.ehdelta("send", "--connection-string-file", str(entra.cs), "--auth", "workload-identity",
                      "--tenant-id", TENANT, "--client-id", "app-owner", "--federated-token-file",
                      str(fed), "--count", "1", "--no-progress")
    assert p.returncode == 2, p.stderr
    assert f"federated token file '{fed}': expected a JWT" in p.stderr
    no_secret(p, "this-is-not-a-jwt-secretish")


def test_workload_and_managed_identity_and_default(entra):
    fed = entra.tmp / "fed"
    fed.write_text(entra.svc.federated_assertion(entra.svc.principals["app-send"]) + "\n")
    p = entra.ehdelta("send", "--connection-string-file", str(entra.cs), "--auth", "workload-identity",
                      "--tenant-id", TENANT, "--client-id", "app-send", "--federated-token-file",
                      str(fed), "--count", "3", "--no-progress")
    assert p.returncode == 0, p.stderr
    msi = dict(IDENTITY_ENDPOINT=f"{entra.svc.authority}/msi/token", IDENTITY_HEADER="id-hdr")
    p = entra.ehdelta("tail", "--connection-string-file", str(entra.cs), "--auth", "managed-identity",
                      "-p", "0", "--from", "earliest", "--to-end", env=entra.env(**msi))
    assert p.returncode == 0, p.stderr
    n = len(entra.svc.requests)
    p = entra.ehdelta("status", "--connection-string-file", str(entra.cs), "--auth", "default",
                      env=entra.env(**msi))
    assert p.returncode == 0, p.stderr
    assert [r[1].split("?")[0] for r in entra.svc.requests[n:]] == ["/msi/token"]


def test_short_tokens_replaced_on_the_live_connection(tmp_path):
    """8 s tokens over ~16 s of following: each is replaced by a new one from
    the endpoint at 80% of its life, put on the same CBS link, without a
    reconnect or re-attach. (The service's exp is whole seconds after a
    floored iat, so a token lives between 7 and 8 s; shorter lifetimes would
    leave the 80% refresh no margin.)"""
    e = Entra(tmp_path, lifetime=8)
    try:
        # to files, not pipes: a pipe nobody reads would hold the receiver back
        with open(tmp_path / "tail.out", "w") as fo, open(tmp_path / "tail.err", "w") as fe:
            tail = subprocess.Popen([EHDELTA, "tail", *e.args("app-recv"), "-p", "2", "--from",
                                     "latest", "--count", "400", "--log-level", "debug"],
                                    stdout=fo, stderr=fe, env=e.env())
            wait_until(lambda: "eh_rx_ready" in (tmp_path / "tail.err").read_text(), timeout=20,
                       what="tail attached")
            p = e.ehdelta("send", *e.args(), "--partition", "2", "--count", "400", "--rate", "25",
                          "--no-progress")
            assert "accepted 400, failed 0" in p.stdout, p.stderr
            assert tail.wait(timeout=60) == 0
        out, err = (tmp_path / "tail.out").read_text(), (tmp_path / "tail.err").read_text()
        assert len(out.splitlines()) == 400
        # 16 s of 8 s tokens: the first and at least two replacements, each a
        # new token from the endpoint, on one connection and one attach
        puts = err.count("eh_put_token ")
        assert puts >= 3, err[-2000:]
        assert err.count("token_request ") == puts
        assert "eh_connection_retry" not in err and "eh_rx_retry" not in err
        assert err.count("eh_connect ") == 1 and err.count("eh_rx_attach ") == 1
        no_secret(subprocess.CompletedProcess([], 0, out, err), *e.svc.issued)
    finally:
        e.stop()


def test_official_sdk_with_a_token_credential(entra):
    """azure-eventhub with a credential object (get_token, as azure-identity's
    credentials are) sends through ehemu with SAS disabled; ehdelta reads it."""
    from azure.eventhub import EventData, EventHubProducerClient
    cred = ServiceTokenCredential(entra.svc, "app-send", SECRETS["app-send"])
    prod = EventHubProducerClient(fully_qualified_namespace=f"localhost:{entra.emu.amqp}",
                                  eventhub_name="eh1", credential=cred, use_tls=False)
    with prod:
        b = prod.create_batch(partition_id="3")
        for i in range(5):
            b.add(EventData(f"sdk-{i}"))
        prod.send_batch(b)
    assert cred.calls >= 1
    p = entra.ehdelta("tail", *entra.args("app-recv"), "-p", "3", "--from", "earliest", "--count", "5")
    assert p.returncode == 0, p.stderr
    assert [json.loads(l)["body"] for l in p.stdout.splitlines()] == [f"sdk-{i}" for i in range(5)]


@pytest.mark.parametrize("form", ["client-secret", "workload-identity", "managed-identity", "default"])
def test_run_with_each_credential_form_against_sas_disabled_emu(entra, form):
    """ehdelta run reads the hub with an Entra ID credential ([source] auth)
    into a Delta table; ehemu takes no SAS."""
    p = entra.ehdelta("send", *entra.args(), "--count", "30", "--no-progress")
    assert p.returncode == 0, p.stderr
    fed = entra.tmp / "fed"
    fed.write_text(entra.svc.federated_assertion(entra.svc.principals["app-recv"]) + "\n")
    keys = {"client-secret": f"tenant_id = {TENANT}\nclient_id = app-recv\n"
                             f"client_secret_file = {entra.tmp / 'app-recv.secret'}\n",
            "workload-identity": f"tenant_id = {TENANT}\nclient_id = app-recv\n"
                                 f"federated_token_file = {fed}\n",
            "managed-identity": "client_id = app-recv\n",
            "default": ""}[form]
    root = entra.tmp / f"t-{form}"
    conf = entra.tmp / f"{form}.conf"
    conf.write_text(f"[source]\nconnection_string_file = {entra.cs}\nauth = {form}\n{keys}"
                    f"starting_position = earliest\n[schema]\ncolumns = body STRING\n"
                    f"metadata = sequence_number, partition\n[sink raw]\npath = {root}\n")
    env = entra.env(IDENTITY_ENDPOINT=f"{entra.svc.authority}/msi/token", IDENTITY_HEADER="id-hdr")
    n = len(entra.svc.requests)
    p = entra.ehdelta("run", "--config", str(conf), "--available-now", env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    info = json.loads(entra.ehdelta("inspect", "--json", str(root)).stdout)
    assert info["rows"] == 30
    want = {"client-secret": "POST", "workload-identity": "POST", "managed-identity": "GET",
            "default": "GET"}[form]
    assert {r[0] for r in entra.svc.requests[n:]} == {want}
    no_secret(p, *entra.svc.issued)
