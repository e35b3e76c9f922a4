mod api {
    use ipc_runtime::service;

    #[service(namespace = "notes")]
    pub trait Notes {
        async fn get(&self, id: u64) -> String;
    }
}

use ipc_runtime::expose;

expose! {
    pub struct ViewerApi {
        notes: api::Note { get },
    }
}

fn main() {}
