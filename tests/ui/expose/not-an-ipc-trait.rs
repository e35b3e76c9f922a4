use ipc_runtime::expose;

// A plain trait: #[service] is missing.
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

expose! {
    pub struct ViewerApi {
        notes: Notes { get },
    }
}

fn main() {}
