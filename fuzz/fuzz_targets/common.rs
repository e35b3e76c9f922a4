//! What every fuzz target shares: one runtime for all inputs, and a panic
//! hook that aborts, so that the fuzzer sees a panic in main as a crash.

use std::sync::OnceLock;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            eprintln!("panic in main: {info}");
            std::process::abort();
        }));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}
