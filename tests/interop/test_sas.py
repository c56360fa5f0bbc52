"""`ehdelta sas` against the official Python SDK's own token generator.

The SDK (azure-eventhub, from the project venv) is the judge: for random
resources, key names, keys and expiries, both must produce the same token byte
for byte.
"""
import os
import random
import string
import subprocess

import pytest
from azure.eventhub._pyamqp.utils import generate_sas_token

from conftest import EHDELTA

ALNUM = string.ascii_letters + string.digits


def rand_text(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def random_case(rng):
    host = rand_text(rng, string.ascii_lowercase + string.digits, 3, 20) + rng.choice(
        [".servicebus.windows.net", ".servicebus.chinacloudapi.cn", ":5671", ""])
    hub = rand_text(rng, ALNUM + "-._", 1, 30)
    path = rng.choice(["", "/", "/" + hub, "/" + hub + "/ConsumerGroups/$Default/Partitions/0"])
    resource = rng.choice(["sb://", "amqps://"]) + host + path
    # names and keys: base64-looking keys, and awkward characters the encoder must
    # handle the way the SDK does (+ / = space % & and non-ASCII)
    key_name = rand_text(rng, ALNUM + "-._ +/%&=é", 1, 40)
    key = rng.choice([
        rand_text(rng, ALNUM + "+/", 43, 43) + "=",
        rand_text(rng, string.printable.strip() + " ", 1, 80),
        rand_text(rng, ALNUM + "ü€", 1, 20),
    ])
    expiry = rng.randint(1, 253402300799)
    return resource, key_name, key, expiry


CASES = [random_case(random.Random(seed)) for seed in range(60)]


@pytest.mark.parametrize("resource,key_name,key,expiry", CASES)
def test_token_matches_official_sdk(resource, key_name, key, expiry):
    want = generate_sas_token(resource, key_name, key, expiry)
    env = dict(os.environ, EHDELTA_SAS_KEY=key)
    out = subprocess.run(
        [EHDELTA, "sas", "--resource", resource, "--key-name", key_name, "--expires-at", str(expiry)],
        env=env, capture_output=True, text=True, timeout=10, check=True)
    assert out.stdout.rstrip("\n") == want
    assert key not in out.stderr


def test_key_file_gives_same_token(tmp_path):
    key = "abc+/=KEY"
    (tmp_path / "key").write_text(key + "\n")
    want = generate_sas_token("sb://ns.servicebus.windows.net/hub", "RootManageSharedAccessKey", key, 1700000000)
    out = subprocess.run(
        [EHDELTA, "sas", "-r", "sb://ns.servicebus.windows.net/hub", "-n", "RootManageSharedAccessKey",
         "--key-file", str(tmp_path / "key"), "--expires-at", "1700000000"],
        capture_output=True, text=True, timeout=10, check=True)
    assert out.stdout.strip() == want
