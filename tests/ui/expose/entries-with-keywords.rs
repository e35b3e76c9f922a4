use ipc_runtime::{expose, service};

#[service(namespace = "notes")]
pub trait Notes {
    async fn get(&self, id: u64) -> String;
}

#[service(namespace = "match")]
pub trait Match {
    async fn join(&self) -> u64;
}

expose! {
    pub struct PubApi {
        pub notes: Notes { get },
    }
}

expose! {
    pub struct TypeApi {
        type: Notes { get },
    }
}

expose! {
    pub struct DynApi {
        notes: dyn Notes { get },
    }
}

// A trait whose name is a keyword in snake case: read as the field
// `r#match`, and the API is there.
expose! {
    pub struct MatchApi {
        Match { join },
    }
}

pub async fn page(api: MatchApi) -> Option<u64> {
    api.r#match.join().await.ok()
}

fn main() {}
