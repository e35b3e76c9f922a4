// `expose!` reaches the items `#[service]` generated next to the trait, so it
// names the trait by its path; importing only the trait is not enough.
mod api {
    use ipc_runtime::service;

    #[service(namespace = "notes")]
    pub trait Notes {
        async fn get(&self, id: u64) -> String;
    }
}

use api::Notes;
use ipc_runtime::expose;

expose! {
    pub struct ViewerApi {
        notes: Notes { get },
    }
}

fn main() {}
