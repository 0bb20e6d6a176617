//! ringway's data plane: the supervisor process and its io_uring workers.

pub mod http;
