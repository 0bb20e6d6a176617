//! The Redis provider (`providers.redis`): Traefik's key layout under `rootKey`, read with
//! SCAN and watched through keyspace notifications (a 50 ms poll where the server refuses
//! them). The loop itself is shared with etcd: [`super::kv::run_kv_provider`].

pub const PROVIDER: &str = "redis";
