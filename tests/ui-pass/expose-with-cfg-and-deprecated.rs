//! An `expose!` struct may be configured out with `#[cfg]` (nothing made
//! for it is left behind naming it) or deprecated (the items made for it
//! do not warn: only code that uses it does).
#![deny(warnings)]

use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    /// Only in builds with a condition no build sets.
    #[cfg(any())]
    pub struct DebugApi {
        notes: Notes { get },
    }
}

expose! {
    /// Still accepted, on its way out.
    #[deprecated(note = "use `ViewerApi`")]
    pub struct OldViewerApi {
        notes: Notes { get },
    }
}

expose! {
    /// The current one.
    pub struct ViewerApi {
        notes: Notes { get },
    }
}

fn main() {
    let _ = <ViewerApi as ipc_runtime::Api>::NAME;
}
