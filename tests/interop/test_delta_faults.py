"""Storage faults between ehdelta and Azurite, injected by a loopback proxy:
throttling (503 + Retry-After), and the ambiguous commit (the PUT reached
storage but the client saw a 500) that must neither duplicate nor lose a
version. Shared Key signs the path, not the host, so the proxy is transparent."""
import http.client
import http.server
import json
import threading
import time

from deltalake import DeltaTable

from delta_util import DEV_KEY, ROWS, azurite, expected_ids, tool  # noqa: F401

KEY_ENV = {"AZURE_STORAGE_ACCOUNT_KEY": DEV_KEY}


class FaultProxy:
    def __init__(self, upstream_port, policy):
        self.policy = policy  # (n, method, path) -> None | ("status", code, retry_after) | ("after", code)
        self.n = 0
        self.faults = []
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer.lock:
                    outer.n += 1
                    n = outer.n
                act = outer.policy(n, self.command, self.path)
                if act and act[0] == "status":
                    outer.faults.append((self.command, self.path, act[1]))
                    self.send_response(act[1])
                    if act[2] is not None:
                        self.send_header("Retry-After", str(act[2]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                up = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                up.request(self.command, self.path, body=body if body else None, headers=hdrs)
                r = up.getresponse()
                data = r.read()
                up.close()
                if act and act[0] == "after":  # storage did it; the client hears a failure
                    outer.faults.append((self.command, self.path, act[1]))
                    self.send_response(act[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = handle_one

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, container, path):
        return f"http://127.0.0.1:{self.port}/devstoreaccount1/{container}/{path}"

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def rs(az, container, path):
    return DeltaTable(f"az://{container}/{path}", storage_options=az.delta_rs_options())


def test_throttling_is_retried_honouring_retry_after(azurite):
    azurite.create_container("throttle")
    # every 4th request is refused with 503 + Retry-After: 1, every 7th with 429
    def policy(n, method, path):
        if n % 4 == 0:
            return ("status", 503, 1)
        if n % 7 == 0:
            return ("status", 429, None)
        return None
    p = FaultProxy(azurite.port, policy)
    try:
        url = p.url("throttle", "t")
        tool("create", url, env=KEY_ENV)
        t0 = time.time()
        out = json.loads(tool("append", url, "th", 1, 6, ROWS, env=KEY_ENV).stdout)
        took = time.time() - t0
    finally:
        p.stop()
    n503 = sum(1 for f in p.faults if f[2] == 503)
    assert out["http_retries"] >= n503 - 2 > 0  # create's faults are counted by its own process
    assert took >= 1.0 * (n503 - 2)            # each 503 waited its Retry-After second
    ids = rs(azurite, "throttle", "t").to_pyarrow_table(columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == sorted(expected_ids(1, 6))


def test_ambiguous_commit_is_resolved_not_repeated(azurite):
    azurite.create_container("ambig")
    hit = {"done": 0}

    def policy(n, method, path):
        # the first attempt at commit 3 lands, but the client is told 500
        if method == "PUT" and path.endswith("_delta_log/00000000000000000003.json") and \
                not hit["done"]:
            hit["done"] = 1
            return ("after", 500)
        return None
    p = FaultProxy(azurite.port, policy)
    try:
        url = p.url("ambig", "t")
        tool("create", url, env=KEY_ENV)
        out = json.loads(tool("append", url, "am", 2, 5, ROWS, env=KEY_ENV).stdout)
    finally:
        p.stop()
    assert hit["done"] == 1
    assert out["commits"] == 5 and out["last_version"] == 5  # no version skipped or doubled
    assert out["attempts"] == 5  # the retry's 409 was recognised as our own commit
    dt = rs(azurite, "ambig", "t")
    ids = dt.to_pyarrow_table(columns=["id"]).column("id").to_pylist()
    assert sorted(ids) == sorted(expected_ids(2, 5))
    assert dt.version() == 5 and dt.transaction_version("am") == 4
