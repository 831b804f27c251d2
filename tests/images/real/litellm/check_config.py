#!/usr/bin/env python3
"""Loads a generated litellm config.yaml through litellm's OWN proxy loader, offline.

Usage: check_config.py CONFIG

The entry point is the one the proxy server runs at start (`litellm --config FILE` ->
uvicorn startup event `proxy_startup_event` -> `proxy_config.load_config(router=...,
config_file_path=FILE)`): the module-level `litellm.proxy.proxy_server.proxy_config`, a
`ProxyConfig`. `load_config` reads the YAML (`get_config`: includes, `os.environ/` resolution),
applies `litellm_settings` (cache: `litellm.Cache(**cache_params)`, which builds the real cache
client), `general_settings` (master key, database url, ...), `router_settings`, and builds the
`litellm.Router` from `model_list`.

No database is touched (load_config does not open one; prisma is set up later in the startup
event). No network is used: every host name lookup is answered here. The cache backend of the
config is simulated on loopback so that the cache client's start-up calls get real answers:
  qdrant-semantic  a minimal Qdrant REST API (collection exists / create / details); the
                   collection request litellm sends is reported
  redis            a minimal RESP server (HELLO/AUTH, PING; the commands it got are reported)
Every other lookup fails (and is reported), as it would in a container without network.

Each `os.environ/NAME` value in the file is set to a dummy unless already set (the compose file
sets them in the container; that it does is not checked here). No value is printed.

Exit status 0: accepted. 1: rejected, with the loader's error. The file counts as rejected when
load_config raises, and also when it survives but
  - the loader or the router logs an ERROR (e.g. the router drops an invalid deployment: the
    proxy calls litellm.Router(ignore_invalid_deployments=True), so it would start without it),
  - the router ends up with fewer deployments than model_list has entries,
  - the loader says it ignores a key ("... Ignoring this key.").
2: bad usage (no such file).
"""

import asyncio
import contextlib
import http.server
import importlib.metadata
import json
import logging
import os
import re
import socket
import socketserver
import sys
import threading
import traceback
import urllib.parse

# Before litellm is imported: its model cost map is the copy inside the package (else it is
# downloaded at import), no feedback box, no model hub lookups.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_DONT_SHOW_FEEDBACK_BOX", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)  # the simulated backends are reached directly

ENV_REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")
LOGGERS = ("LiteLLM", "LiteLLM Proxy", "LiteLLM Router")


def say(msg):
    print(msg, flush=True)


# ---- name resolution: simulated backends on loopback, nothing else -------------------------------
class Resolver:
    """Replaces socket.getaddrinfo: (host, port) of a simulated backend -> its loopback address;
    loopback stays; every other name fails (as without network) and is recorded."""

    def __init__(self):
        self.routes = {}  # (host, port) -> (ip, port)
        self.blocked = []
        self._real = socket.getaddrinfo

    def route(self, host, port, addr):
        self.routes[(host, int(port))] = addr

    def __call__(self, host, port, *args, **kwargs):
        h = host.decode() if isinstance(host, bytes) else host
        try:
            p = int(port) if port is not None else None
        except (TypeError, ValueError):
            p = None
        if (h, p) in self.routes:
            ip, fake_port = self.routes[(h, p)]
            return self._real(ip, fake_port, *args, **kwargs)
        if h in (None, "localhost", "127.0.0.1", "::1", ""):
            return self._real(host, port, *args, **kwargs)
        if f"{h}:{port}" not in self.blocked:
            self.blocked.append(f"{h}:{port}")
        raise socket.gaierror(socket.EAI_NONAME, "no network in the config check")


# ---- simulated Qdrant -------------------------------------------------------------------------------
class FakeQdrant(http.server.BaseHTTPRequestHandler):
    """The three calls QdrantSemanticCache.__init__ makes, answered like Qdrant's REST API."""

    collections = {}  # name -> create request body
    requests = []  # (method, path, api-key header sent)

    def log_message(self, *args):
        pass

    def _reply(self, code, result):
        body = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _name(self):
        parts = urllib.parse.urlsplit(self.path).path.strip("/").split("/")
        return parts[1] if len(parts) >= 2 and parts[0] == "collections" else None, parts

    def do_GET(self):
        self.requests.append(("GET", self.path, bool(self.headers.get("api-key"))))
        name, parts = self._name()
        if name and len(parts) == 3 and parts[2] == "exists":
            return self._reply(200, {"exists": name in self.collections})
        if name and len(parts) == 2 and name in self.collections:
            spec = self.collections[name]
            return self._reply(
                200,
                {
                    "status": "green",
                    "points_count": 0,
                    "config": {
                        "params": {"vectors": spec.get("vectors")},
                        "quantization_config": spec.get("quantization_config"),
                    },
                },
            )
        self._reply(404, None)

    def do_PUT(self):
        self.requests.append(("PUT", self.path, bool(self.headers.get("api-key"))))
        name, parts = self._name()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            spec = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._reply(400, None)
        if name and len(parts) == 2:
            self.collections[name] = spec
            return self._reply(200, True)
        self._reply(404, None)


# ---- simulated Redis --------------------------------------------------------------------------------
class FakeRedis(socketserver.StreamRequestHandler):
    """Enough RESP for a client's connect and health ping: HELLO a map with the protocol asked
    for, PING +PONG, GET nil, every other command +OK."""

    commands = []

    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if not line.startswith(b"*"):
                args = line.split()
            else:
                args = []
                for _ in range(int(line[1:])):
                    size = int(self.rfile.readline()[1:])
                    args.append(self.rfile.read(size + 2)[:-2])
            if not args:
                continue
            cmd = args[0].decode(errors="replace").upper()
            # Names only (AUTH's argument is a secret); HELLO ... AUTH counts as AUTH.
            self.commands.append(cmd)
            if cmd == "HELLO" and b"AUTH" in [a.upper() for a in args[2:3]]:
                self.commands.append("AUTH")
            if cmd == "HELLO":  # recent redis-py clients open with HELLO 3 [AUTH user pass]
                proto = args[1] if len(args) > 1 else b"2"
                self.wfile.write(b"%1\r\n$5\r\nproto\r\n:" + proto + b"\r\n")
            elif cmd == "PING":
                self.wfile.write(b"+PONG\r\n")
            elif cmd == "GET":
                self.wfile.write(b"$-1\r\n")
            else:
                self.wfile.write(b"+OK\r\n")
            self.wfile.flush()


class ThreadingTCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(handler):
    server = ThreadingTCP(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address


def resolve(value):
    """The value the loader will see: `os.environ/NAME` read from the environment."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        return os.environ.get(value[len("os.environ/") :])
    return value


def env_refs(node):
    """NAME of every `os.environ/NAME` value in the parsed file (comments do not count)."""
    if isinstance(node, dict):
        for v in node.values():
            yield from env_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from env_refs(v)
    elif isinstance(node, str):
        m = ENV_REF.fullmatch(node)
        if m:
            yield m.group(1)


def simulate_cache(config, resolver):
    """Starts the simulated backend of litellm_settings.cache_params; returns its description."""
    settings = (config or {}).get("litellm_settings") or {}
    if not isinstance(settings, dict) or settings.get("cache") is not True:
        return None
    params = settings.get("cache_params") or {}
    if not isinstance(params, dict):
        return None
    kind = params.get("type", "redis")
    if kind == "qdrant-semantic":
        base = resolve(params.get("qdrant_api_base")) or os.environ.get("QDRANT_API_BASE")
        if not base:
            return None
        url = urllib.parse.urlsplit(base)
        port = url.port or (443 if url.scheme == "https" else 80)
        resolver.route(url.hostname, port, serve(FakeQdrant))
        return "qdrant"
    if kind == "redis" and not params.get("redis_startup_nodes"):
        host = resolve(params.get("host")) or os.environ.get("REDIS_HOST")
        port = resolve(params.get("port")) or os.environ.get("REDIS_PORT") or 6379
        if not host:
            return None
        resolver.route(host, port, serve(FakeRedis))
        return "redis"
    return None


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def main(argv):
    if len(argv) != 2:
        print("usage: check_config.py CONFIG", file=sys.stderr)
        return 2
    path = argv[1]
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        print(f"check_config: not a readable file: {path}", file=sys.stderr)
        return 2
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()

    version = importlib.metadata.version("litellm")
    import yaml  # litellm[proxy]'s own YAML library (the loader uses yaml.safe_load too)

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raw = None  # the loader reports it below

    # The compose file gives the container these variables; here they get dummy values.
    dummies = []
    for name in dict.fromkeys(env_refs(raw)):
        if name not in os.environ:
            os.environ[name] = f"stackgen-check-dummy-{name.lower()}"
            dummies.append(name)

    resolver = Resolver()
    socket.getaddrinfo = resolver
    simulated = simulate_cache(raw if isinstance(raw, dict) else None, resolver)

    collect = Collect()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(collect)

    # The loader prints its progress on stdout; keep stdout for the verdict.
    with contextlib.redirect_stdout(sys.stderr):
        from litellm.proxy import proxy_server

        async def load():
            router, models, _general = await proxy_server.proxy_config.load_config(
                router=None, config_file_path=path
            )
            await asyncio.sleep(0.2)  # let start-up tasks it scheduled (async pings) run
            return router, models

        try:
            router, models = asyncio.run(load())
            error = None
        except BaseException as e:  # noqa: BLE001 -- any failure of the loader is the verdict
            frames = [
                f"{fr.filename.split('site-packages/')[-1]}:{fr.lineno} ({fr.name})"
                for fr in traceback.extract_tb(e.__traceback__)
                if "site-packages/" in fr.filename
            ]
            ours = [f for f in frames if f.startswith("litellm/")]
            where = f"raised at {frames[-1]}" if frames else "raised here"
            if ours and ours[-1] != frames[-1]:
                where += f", from {ours[-1]}"
            error = f"{type(e).__name__}: {e} ({where})"

    head = f"litellm {version} ProxyConfig.load_config"
    problems = []
    if error is None:
        for r in collect.records:
            msg = r.getMessage()
            if r.levelno >= logging.ERROR:
                problems.append(f"{r.name} logged {r.levelname}: {msg}")
            elif "Ignoring this key" in msg:
                problems.append(f"{r.name}: {msg}")
        entries = raw.get("model_list") if isinstance(raw, dict) else None
        expected = len(entries) if isinstance(entries, list) else 0
        if len(models) < expected:
            problems.append(
                f"the router kept {len(models)} of the {expected} model_list entries "
                "(litellm.Router(ignore_invalid_deployments=True) drops invalid ones)"
            )
    if error is not None or problems:
        say(f"{head} REJECTS {path}")
        for p in ([error] if error else []) + problems:
            say(f"  {p}")
        for r in collect.records:
            if error is not None and r.levelno >= logging.WARNING:
                say(f"  {r.name} {r.levelname}: {r.getMessage()}")
        if resolver.blocked:
            say(f"  lookups refused (no network): {', '.join(resolver.blocked)}")
        return 1

    say(f"{head} accepts {path}")
    names = [
        f"{m.get('model_name')} ({(m.get('litellm_params') or {}).get('model')})" for m in models
    ]
    say(f"  router deployments: {', '.join(names) if names else 'none'}")
    import litellm

    cache = getattr(litellm, "cache", None)
    if cache is not None:
        say(f"  cache: {getattr(cache, 'type', '?')} ({type(cache.cache).__name__})")
    if simulated == "qdrant":
        for name, spec in FakeQdrant.collections.items():
            vec = spec.get("vectors") or {}
            quant = ",".join((spec.get("quantization_config") or {}).keys())
            say(
                f"  qdrant (simulated): collection {name} created with size={vec.get('size')} "
                f"distance={vec.get('distance')} quantization={quant or 'none'}; api-key sent: "
                f"{all(k for _, _, k in FakeQdrant.requests)}"
            )
    if simulated == "redis":
        say(f"  redis (simulated): commands {' '.join(dict.fromkeys(FakeRedis.commands))}")
    if dummies:
        say(f"  dummy values for: {', '.join(dummies)}")
    if resolver.blocked:
        say(f"  lookups refused (no network): {', '.join(resolver.blocked)}")
    for r in collect.records:
        say(f"  {r.name} {r.levelname}: {r.getMessage()}")
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # The loader leaves clients and threads behind; do not wait for them.
    os._exit(code)
