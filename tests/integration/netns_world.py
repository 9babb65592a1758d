# SPDX-License-Identifier: Apache-2.0
"""Runs inside a fresh network namespace (`unshare --net`, root) with the
scripted resolver preloaded (tests/helpers/fake-dns.c): gives loopback
some addresses that count as public (8.8.8.8) or as metadata
(169.254.169.254), serves HTTP on them and on 127.0.0.1 with the same
port, then drives sandboxes through the library and prints one JSON line
of what happened. Nothing here can reach a real network: the namespace
has only its loopback. Called by test_net_proxy.py."""
import json
import os
import subprocess
import sys

import mbxnet
from mbxnet import MBX_NETWORK_ALLOW_DOMAINS, NetError
from netservers import WebServer


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def main():
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", "8.8.8.8/32", "dev", "lo")
    sh("ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
    public = WebServer(host="8.8.8.8", label="public")
    private = WebServer(host="127.0.0.1", port=public.port, label="private")
    meta = WebServer(host="169.254.169.254", port=public.port, label="meta")
    port = public.port
    api = mbxnet.Api(os.environ["MIMOBOX_LIB"])
    res = {"port": port, "ids": []}
    domains = ["rebind.test", "public.test", "*.example.test", "meta.test", "nat64.test", "mixed.test"]

    def sandbox(**kw):
        cfg = mbxnet.Config(api, network=MBX_NETWORK_ALLOW_DOMAINS, domains=domains, **kw)
        try:
            sb = mbxnet.Sandbox(api, cfg)
        finally:
            cfg.close()
        res["ids"].append(sb.id)
        return sb

    def curl(sb, url, opts=""):
        rc, out, err = sb.sh("curl -sS %s --max-time 10 '%s' 2>&1" % (opts, url))
        return out

    def code(sb, url, opts=""):
        return curl(sb, url, "-o /dev/null -w '%{http_code}' " + opts)

    sb = sandbox()
    try:
        res["public"] = curl(sb, "http://public.test:%d/" % port)
        res["rebind1"] = curl(sb, "http://rebind.test:%d/" % port)
        res["rebind2"] = code(sb, "http://rebind.test:%d/" % port)
        res["redirect_private"] = code(sb, "http://public.test:%d/redirect?to=http://internal.example.test:%d/" % (port, port), "-L")
        try:
            sb.http("GET", "http://public.test:%d/redirect?to=http://internal.example.test:%d/" % (port, port))
            res["api_redirect_private"] = "allowed"
        except NetError as e:
            res["api_redirect_private"] = e.name
        res["meta"] = code(sb, "http://meta.test:%d/" % port)
        res["nat64"] = code(sb, "http://nat64.test:%d/" % port)
        res["mixed"] = curl(sb, "http://mixed.test:%d/" % port)
        res["log"] = [{"host": e.host, "verdict": e.verdict, "reason": e.reason, "address": e.address}
                      for e in sb.log()]
    finally:
        sb.close()
    sb = sandbox(allow_private=True)
    try:
        res["meta_private_allowed"] = code(sb, "http://meta.test:%d/" % port)
    finally:
        sb.close()
    res["private_hits"] = private.hits
    res["meta_hits"] = meta.hits
    try:
        with open(os.environ["MBX_FAKE_DNS_LOG"]) as f:
            res["dns_calls"] = f.read().split()
    except OSError:
        res["dns_calls"] = []
    for s in (public, private, meta):
        s.close()
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
