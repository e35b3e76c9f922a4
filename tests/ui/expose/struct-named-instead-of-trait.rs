use ipc_runtime::{expose, service};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Note {
    pub text: String,
}

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> Note;
}

// `Note` is the struct, not the trait: reported as its missing methods
// module (the crate docs' table of rules says what that means).
expose! {
    pub struct ViewerApi {
        notes: Note { get },
    }
}

fn main() {}
