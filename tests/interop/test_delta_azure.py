"""ehdelta's Delta tables on Azurite (the Blob API over loopback): Shared
Key, SAS and bearer tokens (fixed, client secret, workload identity and
managed identity through a local token endpoint), concurrent writers, and
delta-rs reading everything back."""
import base64
import datetime
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse

import pytest
from deltalake import DeltaTable

from delta_util import (DEV_KEY, DL_TOOL, EHDELTA, ROWS, Azurite, azurite, azurite_bin,  # noqa: F401
                        expected_ids, run, snapshot, tool)

KEY_ENV = {"AZURE_STORAGE_ACCOUNT_KEY": DEV_KEY}


def rs(az, container, path, version=None):
    return DeltaTable(f"az://{container}/{path}", version=version,
                      storage_options=az.delta_rs_options())


def ids_of(dt):
    return dt.to_pyarrow_table(columns=["id"]).column("id").to_pylist()


def test_shared_key_tables_read_by_delta_rs_version_by_version(azurite):
    azurite.create_container("shkey")
    url = azurite.url("shkey", "tables/events")
    tool("create", url, "--partitioned", env=KEY_ENV)
    out = json.loads(tool("append", url, "app", 3, 12, ROWS, env=KEY_ENV).stdout)
    assert out["last_version"] == 12
    for v in range(13):
        dt = rs(azurite, "shkey", "tables/events", version=v)
        assert sorted(ids_of(dt)) == sorted(expected_ids(3, v))
        if v:
            assert dt.transaction_version("app") == v - 1
    dt = rs(azurite, "shkey", "tables/events")
    assert [f.name for f in dt.schema().fields][-1] == "part"
    assert len(dt.history()) == 13
    snap = snapshot(url, env=KEY_ENV)
    assert snap["checkpoint"] == 10 and snap["version"] == 12


def test_concurrent_appends_on_azurite(azurite):
    azurite.create_container("conc")
    url = azurite.url("conc", "t")
    tool("create", url, env=KEY_ENV)
    env = dict(os.environ, **KEY_ENV)
    procs = [subprocess.Popen([DL_TOOL, "append", url, f"w{w}", str(w), "200", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e
    stats = [json.loads(o) for o, _ in outs]
    names = [b.name for b in azurite.service().get_container_client("conc")
             .list_blobs(name_starts_with="t/_delta_log/") if b.name.endswith(".json")]
    assert sorted(names) == [f"t/_delta_log/{v:020d}.json" for v in range(801)]
    dt = rs(azurite, "conc", "t")
    assert dt.version() == 800
    ids = ids_of(dt)
    assert len(ids) == len(set(ids)) == 1600
    assert set(ids) == set().union(*(expected_ids(w, 200, 2) for w in range(4)))
    assert all(dt.transaction_version(f"w{w}") == 199 for w in range(4))
    print("azurite concurrency:", stats)


def test_sas_paths(azurite):
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
    azurite.create_container("sas")
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    rw = generate_account_sas("devstoreaccount1", DEV_KEY,
                              ResourceTypes(service=True, container=True, object=True),
                              AccountSasPermissions(read=True, write=True, delete=True, list=True,
                                                    add=True, create=True), expiry=exp)
    ro = generate_account_sas("devstoreaccount1", DEV_KEY,
                              ResourceTypes(service=True, container=True, object=True),
                              AccountSasPermissions(read=True, list=True), expiry=exp)
    url = azurite.url("sas", "t")
    env = {"AZURE_STORAGE_SAS_TOKEN": rw, "AZURE_STORAGE_ACCOUNT_KEY": ""}
    tool("create", url, env=env)
    tool("append", url, "s", 1, 3, ROWS, env=env)
    assert snapshot(url, env={"AZURE_STORAGE_SAS_TOKEN": ro})["txn"] == {"s": 2}
    denied = tool("append", url, "s", 1, 5, ROWS, env={"AZURE_STORAGE_SAS_TOKEN": ro}, check=False)
    assert denied.returncode != 0 and "SAS refused" in denied.stderr
    assert ro not in denied.stderr and "sig=" not in denied.stderr  # no secret in messages
    assert sorted(ids_of(rs(azurite, "sas", "t"))) == sorted(expected_ids(1, 3))


def test_bad_credentials_and_missing_container_are_clear(azurite):
    azurite.create_container("bad")
    url = azurite.url("bad", "t")
    tool("create", url, env=KEY_ENV)
    wrong = base64.b64encode(b"x" * 64).decode()
    p = tool("snapshot", url, env={"AZURE_STORAGE_ACCOUNT_KEY": wrong}, check=False)
    assert p.returncode != 0 and "account key refused" in p.stderr and wrong not in p.stderr
    p = tool("create", azurite.url("nosuchcontainer", "t"), env=KEY_ENV, check=False)
    assert "container 'nosuchcontainer' does not exist" in p.stderr
    p = run([EHDELTA, "optimize", azurite.url("bad", "nothing")], env=KEY_ENV, check=False)
    assert p.returncode == 4 and "no Delta table" in p.stderr
    p = run([EHDELTA, "optimize", azurite.url("bad", "t")], env={"AZURE_STORAGE_ACCOUNT_KEY": wrong},
            check=False)
    assert p.returncode == 3


def test_optimize_then_vacuum_on_azurite(azurite):
    azurite.create_container("opt")
    url = azurite.url("opt", "t")
    tool("create", url, "--partitioned", env=KEY_ENV)
    tool("append", url, "a", 4, 20, ROWS, env=KEY_ENV)
    before = sorted(ids_of(rs(azurite, "opt", "t")))
    assert "files_added=3" in run([EHDELTA, "optimize", url], env=KEY_ENV).stdout
    assert "files=20" in run([EHDELTA, "vacuum", url, "--retain", "0s", "--force"],
                             env=KEY_ENV).stdout
    dt = rs(azurite, "opt", "t")
    assert sorted(ids_of(dt)) == before and len(dt.file_uris()) == 3
    info = json.loads(run([EHDELTA, "inspect", "--json", url], env=KEY_ENV).stdout)
    assert info["version"] == dt.version() == 21 and info["files"] == 3
    assert info["rows"] == len(before) and info["txn"] == {"a": 19}
    parquet = [b.name for b in azurite.service().get_container_client("opt").list_blobs()
               if b.name.endswith(".parquet") and "_delta_log" not in b.name]
    assert len(parquet) == 3



# ---- bearer tokens (HTTPS Azurite with --oauth basic, reference §3.9) ----

def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def fake_jwt(exp_in=3600):
    now = int(time.time())
    body = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/tenant-x/",
            "nbf": now - 60, "iat": now - 60, "exp": now + exp_in, "oid": "00000000-0000-0000-0000-000000000001"}
    return ".".join([b64u(json.dumps({"alg": "none", "typ": "JWT"}).encode()),
                     b64u(json.dumps(body).encode()), b64u(b"sig")])


class TokenServer:
    """A local Entra ID / managed-identity token endpoint that records requests."""

    def __init__(self):
        self.requests = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(n).decode())
                outer.requests.append(("POST", self.path, form, dict(self.headers)))
                self.answer({"token_type": "Bearer", "expires_in": 3599, "access_token": fake_jwt()})

            def do_GET(self):
                outer.requests.append(("GET", self.path, {}, dict(self.headers)))
                self.answer({"access_token": fake_jwt(), "expires_on": str(int(time.time()) + 3600),
                             "token_type": "Bearer", "resource": "https://storage.azure.com"})

        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def oauth_azurite(tmp_path_factory):
    if not azurite_bin():
        pytest.skip("azurite not installed (.tools/node)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    a = Azurite(extra=("--oauth", "basic", "--cert", cert, "--key", key))
    a.cert = cert
    from azure.storage.blob import BlobServiceClient
    svc = BlobServiceClient(f"https://127.0.0.1:{a.port}/devstoreaccount1",
                            credential={"account_name": "devstoreaccount1", "account_key": DEV_KEY},
                            connection_verify=cert)
    svc.create_container("tok")
    yield a
    a.stop()


def token_env(az, **kw):
    env = {"EHDELTA_CA_FILE": az.cert, "AZURE_STORAGE_ACCOUNT_KEY": "", "AZURE_STORAGE_SAS_TOKEN": ""}
    env.update(kw)
    return env


def test_bearer_token_paths(oauth_azurite):
    az = oauth_azurite
    url = az.url("tok", "t")
    # a fixed token
    tool("create", url, env=token_env(az, AZURE_STORAGE_TOKEN=fake_jwt()))
    tool("append", url, "b", 5, 2, ROWS, env=token_env(az, AZURE_STORAGE_TOKEN=fake_jwt()))
    # an expired one is refused, clearly
    p = tool("snapshot", url, env=token_env(az, AZURE_STORAGE_TOKEN=fake_jwt(-120)), check=False)
    assert p.returncode != 0 and "bearer token refused" in p.stderr
    srv = TokenServer()
    try:
        base = dict(AZURE_TENANT_ID="tenant-x", AZURE_CLIENT_ID="client-y",
                    AZURE_AUTHORITY_HOST=f"http://127.0.0.1:{srv.port}")
        # client secret
        out = json.loads(tool("append", url, "b", 5, 4, ROWS,
                              env=token_env(az, AZURE_CLIENT_SECRET="s3cret", **base)).stdout)
        assert out["commits"] == 2
        method, path, form, _ = srv.requests[0]
        assert method == "POST" and path == "/tenant-x/oauth2/v2.0/token"
        assert form["grant_type"] == ["client_credentials"] and form["client_secret"] == ["s3cret"]
        assert form["scope"] == ["https://storage.azure.com/.default"]
        # one token serves the whole run (cached), not one per request
        assert len(srv.requests) == 1
        # workload identity: the federated token file (a projected service
        # account token, a JWT) is the client assertion
        fed = os.path.join(os.path.dirname(az.cert), "fed.jwt")
        sa_token = fake_jwt()
        with open(fed, "w") as f:
            f.write(sa_token + "\n")
        snap = snapshot(url, env=token_env(az, AZURE_FEDERATED_TOKEN_FILE=fed, **base))
        assert snap["txn"] == {"b": 3}
        form = srv.requests[-1][2]
        assert form["client_assertion"] == [sa_token]
        assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        # managed identity (App Service style endpoint), only when asked for
        snap = snapshot(url, env=token_env(az, EHDELTA_STORAGE_AUTH="managed-identity",
                                           IDENTITY_ENDPOINT=f"http://127.0.0.1:{srv.port}/msi/token",
                                           IDENTITY_HEADER="hdr-z"))
        method, path, _, headers = srv.requests[-1]
        assert method == "GET" and path.startswith("/msi/token?api-version=2019-08-01")
        assert {k.lower(): v for k, v in headers.items()}["x-identity-header"] == "hdr-z"
        assert snap["version"] == 4
        # auth = default tries DefaultAzureCredential's order: the environment's
        # client secret before workload identity before managed identity
        msi = {"IDENTITY_ENDPOINT": f"http://127.0.0.1:{srv.port}/msi/token", "IDENTITY_HEADER": "h"}
        n = len(srv.requests)
        snapshot(url, env=token_env(az, EHDELTA_STORAGE_AUTH="default", AZURE_CLIENT_SECRET="s3cret",
                                    AZURE_FEDERATED_TOKEN_FILE=fed, **msi, **base))
        assert [r[2].get("client_secret") for r in srv.requests[n:]] == [["s3cret"]]
        n = len(srv.requests)
        snapshot(url, env=token_env(az, EHDELTA_STORAGE_AUTH="default", AZURE_FEDERATED_TOKEN_FILE=fed,
                                    **msi, **base))
        assert [r[2].get("client_assertion") for r in srv.requests[n:]] == [[sa_token]]
        n = len(srv.requests)
        snapshot(url, env=token_env(az, EHDELTA_STORAGE_AUTH="default", **msi,
                                    **{k: v for k, v in base.items() if k != "AZURE_TENANT_ID"}))
        assert [r[1].split("?")[0] for r in srv.requests[n:]] == ["/msi/token"]
    finally:
        srv.stop()
    # delta-rs agrees on what the token-authenticated writers committed
    from azure.storage.blob import BlobServiceClient  # noqa: F401
    assert sorted(snapshot(url, env=token_env(az, AZURE_STORAGE_TOKEN=fake_jwt()))["txn"].items()) \
        == [("b", 3)]


def test_block_uploads_commit_atomically(azurite):
    """With a tiny block size every object (data files, commits, checkpoints)
    goes through Put Block + Put Block List; commits keep put-if-absent
    semantics through If-None-Match on the block list."""
    azurite.create_container("blocks")
    url = azurite.url("blocks", "t")
    env = dict(KEY_ENV, EHDELTA_BLOCK_SIZE="300")
    tool("create", url, env=env)
    penv = dict(os.environ, **env)
    procs = [subprocess.Popen([DL_TOOL, "append", url, f"b{w}", str(w), "12", str(ROWS)], env=penv,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in range(2)]
    for p in procs:
        _, e = p.communicate(timeout=300)
        assert p.returncode == 0, e
    blob = azurite.service().get_blob_client("blocks", "t/_delta_log/00000000000000000010.json")
    assert len(blob.get_block_list()[0]) > 1  # committed as several blocks
    dt = rs(azurite, "blocks", "t")
    assert dt.version() == 24
    ids = ids_of(dt)
    assert sorted(ids) == sorted(expected_ids(0, 12) | expected_ids(1, 12))
