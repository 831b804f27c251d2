#!/usr/bin/env python3
"""Writes a valid stackgen manifest with N tenants and every service, for benchmarks.

Usage: bench-manifest.py N OUT

Secrets are fixed placeholders (benchmarks only). Vector DBs cycle through the four choices so
every branch of the vector-DB switch is exercised. Each tenant gets a 40-port range from 10000
so that 1,000 tenants fit below 65535.
"""
import sys

SECRETS = {
    "postgres": ["POSTGRES_PASSWORD"], "redis": ["REDIS_PASSWORD"], "qdrant": ["QDRANT_API_KEY"],
    "weaviate": ["WEAVIATE_API_KEY"], "n8n": ["N8N_ENCRYPTION_KEY"],
    "flowise": ["FLOWISE_SECRETKEY", "FLOWISE_JWT_AUTH_SECRET", "FLOWISE_JWT_REFRESH_SECRET",
                "FLOWISE_SESSION_SECRET", "FLOWISE_TOKEN_HASH_SECRET"],
    "anythingllm": ["ANYTHINGLLM_JWT_SECRET", "ANYTHINGLLM_SIG_KEY", "ANYTHINGLLM_SIG_SALT"],
    "litellm": ["LITELLM_MASTER_KEY", "LITELLM_SALT_KEY"],
    "dify": ["DIFY_SECRET_KEY", "DIFY_SANDBOX_API_KEY", "DIFY_PLUGIN_DAEMON_KEY", "DIFY_PLUGIN_INNER_API_KEY"],
    "openclaw": ["OPENCLAW_GATEWAY_TOKEN"], "tailscale": ["TAILSCALE_AUTH_KEY"],
    "openwebui": ["OPENWEBUI_SECRET_KEY"], "grafana": ["GRAFANA_ADMIN_PASSWORD", "GRAFANA_SECRET_KEY"],
    "minio": ["MINIO_ROOT_PASSWORD"],
}
COMMON = ["postgres", "redis", "ollama", "n8n", "flowise", "anythingllm", "litellm", "dify", "openclaw",
          "tailscale", "openwebui", "grafana", "prometheus", "minio", "signal-cli-rest-api", "caddy"]
VDBS = ["qdrant", "pgvector", "weaviate", "chroma"]


def main() -> None:
    n, out = int(sys.argv[1]), sys.argv[2]
    lines = ["STACKGEN_MANIFEST_VERSION=1", "DOMAIN=bench.example", "BASE_DIR=/srv/bench", "TLS_MODE=internal"]
    for i in range(n):
        name = f"t{i}"
        p = name.upper()
        vdb = VDBS[i % 4]
        services = COMMON + ([vdb] if vdb != "pgvector" else [])
        if vdb == "chroma":  # dify's chroma client cannot read chroma 1.x: stackgen refuses the pair
            services = [s for s in services if s != "dify"]
        start = 10000 + 40 * i
        lines += [f"TENANT={name}", f"{p}__VECTOR_DB={vdb}", f"{p}__SERVICES={','.join(services)}",
                  f"{p}__UID={30000 + i}", f"{p}__GID={30000 + i}",
                  f"{p}__OPENCLAW_UID={40000 + i}", f"{p}__OPENCLAW_GID={40000 + i}",
                  f"{p}__PORT_RANGE={start}-{start + 39}"]
        for comp in services:
            for s in SECRETS.get(comp, []):
                lines.append(f"{p}__{s}=bench{s.lower().replace('_', '')}{i:06d}xxxxxxxxxxxxxxxx")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
