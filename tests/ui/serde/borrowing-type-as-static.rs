use std::borrow::Cow;

use ipc_runtime::service;
use serde::{Deserialize, Serialize};

// A type that borrows from what it decodes cannot cross, even named with
// 'static: each side decodes into new memory. rustc's own words (no
// diagnostic attribute reaches a higher-ranked lifetime error); the
// `IpcType` docs explain them.
#[derive(Serialize, Deserialize)]
pub struct Note<'a> {
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

#[service(namespace = "notes")]
pub trait Notes {
    async fn save(&self, note: Note<'static>) -> u64;
}

fn main() {}
