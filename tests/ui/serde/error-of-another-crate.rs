use ipc_runtime::service;

// `std::io::Error` cannot be given serde's traits here: the note says to
// convert it into a type of one's own.
#[service(namespace = "files")]
pub trait Files {
    async fn read(&self, path: String) -> Result<String, std::io::Error>;
}

fn main() {}
