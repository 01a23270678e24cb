"""Bearer tokens on the HTTP API (issue 13): `Authorization: Bearer TOKEN`
logs in as the token's user under http.authentication=basic, with the same
ACLs as that user's password. A user manages its own tokens; others' need
the cluster's ACL. Tokens expire, can be deleted (also on a keep-alive
connection that already used them), go with their user, survive a
restart, and `cairn` uses CAIRN_TOKEN. Driven with requests and the CLI."""
import os
import subprocess
import time

import pytest
import requests

from cairn_broker import Broker

PW = {"admin": "admin-pw", "alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture(scope="module")
def tb(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokens")
    b = Broker(d / "data", d / "broker.log", {
        "http.authentication": "basic", "authorizer.enabled": "true",
        "super.users": "User:admin"})
    for name, pw in PW.items():
        r = subprocess.run([b.bin, "user", "add", name, "--password", pw, "--data-dir",
                            b.data_dir], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    b.start()
    try:
        yield b
        b.stop(check=True)
    finally:
        b.cleanup()


def url(b, path):
    return "http://127.0.0.1:%d%s" % (b.http_port, path)


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def cli(b, *args, env=None, check=True):
    e = dict(os.environ, CAIRN_USER="admin", CAIRN_PASSWORD=PW["admin"])
    e.update(env or {})
    r = subprocess.run([b.bin, *args, "--http", "127.0.0.1:%d" % b.http_port],
                       capture_output=True, text=True, env=e, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def create(b, login, **body):
    r = requests.post(url(b, "/tokens"), json=body, auth=login, timeout=10)
    return r


def test_own_token_logs_in_as_its_user(tb):
    r = create(tb, ("alice", PW["alice"]), description="ci job")
    assert r.status_code == 201, r.text
    j = r.json()
    tok = j["token"]
    assert tok.startswith("cairn_") and len(tok) == 87
    assert j["user"] == "alice" and j["expires_ms"] == 0 and j["description"] == "ci job"
    # the token is alice: the same ACLs as her password
    r = requests.get(url(tb, "/broker"), headers=bearer(tok), timeout=10)
    assert r.status_code == 403 and "User:alice may not Describe the cluster" in r.text
    cli(tb, "acl", "add", "--allow", "User:alice", "--operation", "Describe", "--cluster")
    assert requests.get(url(tb, "/broker"), headers=bearer(tok), timeout=10).status_code == 200
    # a wrong secret, a made-up token and garbage are 401 with RFC 6750's error
    bad = tok[:-4] + ("0000" if not tok.endswith("0000") else "1111")
    for t in (bad, "cairn_" + "0" * 16 + "_" + "0" * 64, "nonsense"):
        r = requests.get(url(tb, "/topics"), headers=bearer(t), timeout=10)
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert r.json()["error_code"] == "unauthorized"
    assert "bearer token refused (the token is not valid)" in tb.log_text(200000)
    # the listing shows alice her own tokens only, never the secret
    r = requests.get(url(tb, "/tokens"), headers=bearer(tok), timeout=10)
    assert r.status_code == 200
    toks = r.json()["tokens"]
    assert [t["id"] for t in toks] == [j["id"]] and "token" not in toks[0]


def test_tokens_of_others_need_the_cluster_acl(tb):
    r = create(tb, ("alice", PW["alice"]), user="bob")
    assert r.status_code == 403 and "tokens of user 'bob'" in r.text
    r = create(tb, ("admin", PW["admin"]), user="bob")
    assert r.status_code == 201
    bob_id = r.json()["id"]
    r = requests.delete(url(tb, "/tokens/" + bob_id), auth=("alice", PW["alice"]), timeout=10)
    assert r.status_code == 403
    assert create(tb, ("admin", PW["admin"]), user="nobody").status_code == 404
    assert create(tb, ("admin", PW["admin"]), user="bob", ttl_ms=-5).status_code == 400
    r = requests.get(url(tb, "/tokens"), auth=("admin", PW["admin"]), timeout=10)
    assert bob_id in [t["id"] for t in r.json()["tokens"]]
    r = requests.delete(url(tb, "/tokens/" + bob_id), auth=("admin", PW["admin"]), timeout=10)
    assert r.status_code == 200 and r.json() == {"deleted": bob_id}
    r = requests.delete(url(tb, "/tokens/" + bob_id), auth=("admin", PW["admin"]), timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "unknown_token"


def test_expiry_and_deletion_apply_to_open_connections(tb):
    cli(tb, "acl", "add", "--allow", "User:bob", "--operation", "Describe", "--cluster")
    r = cli(tb, "token", "create", "--user", "bob", "--ttl", "2s", "--description", "short")
    tok = r.stdout.strip()
    assert len(tok) == 87 and "for user bob, expires" in r.stderr
    s = requests.Session()  # one keep-alive connection: the login is cached on it
    assert s.get(url(tb, "/topics"), headers=bearer(tok), timeout=10).status_code == 200
    time.sleep(2.2)
    r = s.get(url(tb, "/topics"), headers=bearer(tok), timeout=10)
    assert r.status_code == 401 and "the token has expired" in r.text
    assert "(expired)" in cli(tb, "token", "list").stdout
    # deletion: refused at once on the same connection
    tok = create(tb, ("admin", PW["admin"]), user="bob").json()["token"]
    assert s.get(url(tb, "/topics"), headers=bearer(tok), timeout=10).status_code == 200
    tid = tok[6:22]
    assert "token %s deleted" % tid in cli(tb, "token", "delete", tid).stdout
    assert s.get(url(tb, "/topics"), headers=bearer(tok), timeout=10).status_code == 401


def test_tokens_go_with_their_user_and_survive_restart(tb):
    r = create(tb, ("admin", PW["admin"]), user="bob")
    bob_tok = r.json()["token"]
    keep = create(tb, ("admin", PW["admin"]), user="admin").json()["token"]
    cli(tb, "user", "delete", "bob")
    assert requests.get(url(tb, "/topics"), headers=bearer(bob_tok), timeout=10).status_code == 401
    cli(tb, "user", "add", "bob", "--password", "new-pw")
    assert requests.get(url(tb, "/topics"), headers=bearer(bob_tok), timeout=10).status_code == 401
    listed = cli(tb, "token", "list", "--json").stdout
    assert "\"bob\"" not in listed
    tb.stop(check=True)
    tb.start()
    assert requests.get(url(tb, "/topics"), headers=bearer(keep), timeout=10).status_code == 200
    assert requests.get(url(tb, "/topics"), headers=bearer(bob_tok), timeout=10).status_code == 401
    # the CLI logs in with CAIRN_TOKEN (and a wrong one fails with the broker's 401)
    r = cli(tb, "topic", "list", env={"CAIRN_USER": "", "CAIRN_TOKEN": keep})
    r = cli(tb, "topic", "list", env={"CAIRN_USER": "", "CAIRN_TOKEN": "cairn_nope"}, check=False)
    assert r.returncode == 1 and "401" in r.stderr
