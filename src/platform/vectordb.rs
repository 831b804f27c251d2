//! The vector-DB switch: the one place where a tenant's `VECTOR_DB` becomes the wiring of every
//! consumer (facts: upstream-services.md, section C, and docs/upstream-notes.md).
//!
//! Consumers with an env-level setting: open-webui, anythingllm, dify (api and worker), and
//! litellm (its cache, in config.yaml). n8n, flowise and openclaw have none: their vector stores
//! are configured per workflow / chatflow / plugin in their own UIs, so nothing is wired for them.
//! Each tenant has its own vector DB instance; names that carry the tenant (collection prefixes,
//! table names) keep data apart even where several apps share that instance.

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::manifest::Tenant;
use crate::platform::refs::{ident, postgres_url, secret};

/// The compose service that serves the tenant's vectors.
pub fn server_service(tenant: &Tenant) -> &'static str {
    match tenant.vector_db.as_str() {
        "qdrant" => "qdrant",
        "weaviate" => "weaviate",
        "chroma" => "chroma",
        _ => "postgres",
    }
}

/// True when the `postgres` service must run the pgvector image.
pub fn postgres_is_pgvector(tenant: &Tenant) -> bool {
    tenant.vector_db == "pgvector"
}

/// Environment variables that wire `service` to the tenant's vector DB (empty for non-consumers).
pub fn consumer_env(tenant: &Tenant, service: &str) -> IndexMap<String, String> {
    let t = ident(tenant);
    let vdb = tenant.vector_db.as_str();
    let pairs: Vec<(&str, String)> = match (service, vdb) {
        ("openwebui", "qdrant") => vec![
            ("VECTOR_DB", "qdrant".into()),
            ("QDRANT_URI", "http://qdrant:6333".into()),
            ("QDRANT_API_KEY", secret(tenant, "QDRANT_API_KEY")),
            ("QDRANT_COLLECTION_PREFIX", format!("{t}_openwebui")),
        ],
        ("openwebui", "pgvector") => vec![
            ("VECTOR_DB", "pgvector".into()),
            ("PGVECTOR_DB_URL", postgres_url(tenant, "openwebui")),
            ("PGVECTOR_CREATE_EXTENSION", "true".into()),
        ],
        ("openwebui", "weaviate") => vec![
            ("VECTOR_DB", "weaviate".into()),
            ("WEAVIATE_HTTP_HOST", "weaviate".into()),
            ("WEAVIATE_HTTP_PORT", "8080".into()),
            ("WEAVIATE_GRPC_HOST", "weaviate".into()),
            ("WEAVIATE_GRPC_PORT", "50051".into()),
            ("WEAVIATE_API_KEY", secret(tenant, "WEAVIATE_API_KEY")),
        ],
        ("openwebui", "chroma") => vec![
            ("VECTOR_DB", "chroma".into()),
            ("CHROMA_HTTP_HOST", "chroma".into()),
            ("CHROMA_HTTP_PORT", "8000".into()),
        ],
        ("anythingllm", "qdrant") => vec![
            ("VECTOR_DB", "qdrant".into()),
            ("QDRANT_ENDPOINT", "http://qdrant:6333".into()),
            ("QDRANT_API_KEY", secret(tenant, "QDRANT_API_KEY")),
        ],
        ("anythingllm", "pgvector") => vec![
            ("VECTOR_DB", "pgvector".into()),
            (
                "PGVECTOR_CONNECTION_STRING",
                postgres_url(tenant, "anythingllm"),
            ),
            ("PGVECTOR_TABLE_NAME", format!("{t}_anythingllm_vectors")),
        ],
        ("anythingllm", "weaviate") => vec![
            ("VECTOR_DB", "weaviate".into()),
            ("WEAVIATE_ENDPOINT", "http://weaviate:8080".into()),
            ("WEAVIATE_API_KEY", secret(tenant, "WEAVIATE_API_KEY")),
        ],
        ("anythingllm", "chroma") => vec![
            ("VECTOR_DB", "chroma".into()),
            ("CHROMA_ENDPOINT", "http://chroma:8000".into()),
        ],
        ("dify-api" | "dify-worker", "qdrant") => vec![
            ("VECTOR_STORE", "qdrant".into()),
            ("VECTOR_INDEX_NAME_PREFIX", format!("Vector_index_{t}")),
            ("QDRANT_URL", "http://qdrant:6333".into()),
            ("QDRANT_API_KEY", secret(tenant, "QDRANT_API_KEY")),
            ("QDRANT_CLIENT_TIMEOUT", "20".into()),
            ("QDRANT_GRPC_ENABLED", "false".into()),
        ],
        ("dify-api" | "dify-worker", "pgvector") => vec![
            ("VECTOR_STORE", "pgvector".into()),
            ("VECTOR_INDEX_NAME_PREFIX", format!("Vector_index_{t}")),
            ("PGVECTOR_HOST", "postgres".into()),
            ("PGVECTOR_PORT", "5432".into()),
            ("PGVECTOR_USER", "stackgen".into()),
            ("PGVECTOR_PASSWORD", secret(tenant, "POSTGRES_PASSWORD")),
            ("PGVECTOR_DATABASE", "dify".into()),
        ],
        ("dify-api" | "dify-worker", "weaviate") => vec![
            ("VECTOR_STORE", "weaviate".into()),
            ("VECTOR_INDEX_NAME_PREFIX", format!("Vector_index_{t}")),
            ("WEAVIATE_ENDPOINT", "http://weaviate:8080".into()),
            ("WEAVIATE_API_KEY", secret(tenant, "WEAVIATE_API_KEY")),
            ("WEAVIATE_GRPC_ENDPOINT", "weaviate:50051".into()),
        ],
        ("dify-api" | "dify-worker", "chroma") => vec![
            ("VECTOR_STORE", "chroma".into()),
            ("VECTOR_INDEX_NAME_PREFIX", format!("Vector_index_{t}")),
            ("CHROMA_HOST", "chroma".into()),
            ("CHROMA_PORT", "8000".into()),
            ("CHROMA_TENANT", "default_tenant".into()),
            ("CHROMA_DATABASE", "default_database".into()),
        ],
        ("litellm", "qdrant") => vec![
            ("QDRANT_API_BASE", "http://qdrant:6333".into()),
            ("QDRANT_API_KEY", secret(tenant, "QDRANT_API_KEY")),
        ],
        _ => Vec::new(),
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// LiteLLM's `litellm_settings.cache_params`: a qdrant semantic cache when the tenant uses
/// qdrant (and has an embedding model to use), else a redis cache. Secrets stay `os.environ/`.
pub fn litellm_cache(tenant: &Tenant) -> IndexMap<String, Value> {
    let t = ident(tenant);
    let mut m = IndexMap::new();
    if tenant.vector_db == "qdrant" && tenant.has("ollama") {
        m.insert("type".into(), json!("qdrant-semantic"));
        m.insert("qdrant_api_base".into(), json!("http://qdrant:6333"));
        m.insert("qdrant_api_key".into(), json!("os.environ/QDRANT_API_KEY"));
        m.insert(
            "qdrant_collection_name".into(),
            json!(format!("{t}_litellm_cache")),
        );
        m.insert("qdrant_quantization_config".into(), json!("binary"));
        m.insert(
            "qdrant_semantic_cache_embedding_model".into(),
            json!("embed"),
        );
        // Must equal the embedding model's dimension (nomic-embed-text: 768; litellm defaults to 1536).
        m.insert("qdrant_semantic_cache_vector_size".into(), json!(768));
        m.insert("similarity_threshold".into(), json!(0.8));
    } else {
        m.insert("type".into(), json!("redis"));
        m.insert("host".into(), json!("redis"));
        m.insert("port".into(), json!(6379));
        m.insert("password".into(), json!("os.environ/REDIS_PASSWORD"));
        m.insert("namespace".into(), json!(format!("{t}.litellm")));
        m.insert("ttl".into(), json!(3600));
    }
    m
}

/// Databases that need `CREATE EXTENSION vector` (pgvector tenants only).
pub fn pgvector_databases(tenant: &Tenant) -> Vec<String> {
    if !postgres_is_pgvector(tenant) {
        return Vec::new();
    }
    [
        ("openwebui", "openwebui"),
        ("anythingllm", "anythingllm"),
        ("dify", "dify"),
    ]
    .into_iter()
    .filter(|(component, _)| tenant.has(component))
    .map(|(_, db)| db.to_string())
    .collect()
}
