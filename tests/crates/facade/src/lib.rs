//! Re-exports the runtime as `ipc_facade::ipc`, for a crate that reaches
//! it only through this one.

pub use ipc_runtime as ipc;
