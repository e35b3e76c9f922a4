use ipc_runtime::service;

// Each `timeout_secs` is refused with what to write instead.
#[service(namespace = "files")]
pub trait Files {
    #[ipc(timeout_secs = "5m")]
    async fn pick(&self) -> Option<String>;
    #[ipc(timeout_secs = 0)]
    async fn save(&self, text: String) -> bool;
    #[ipc(timeout_secs)]
    async fn open(&self) -> Option<String>;
    #[ipc(timeout_secs = 60, timeout_secs = 120)]
    async fn export(&self) -> bool;
    #[ipc(timeout_secs = 99999999999999999999)]
    async fn wait(&self) -> bool;
    #[ipc(timout_secs = 60)]
    async fn import(&self) -> bool;
    #[ipc(timeout_secs = 1m)]
    async fn print(&self) -> bool;
    #[ipc(timeout_secs = 500ms)]
    async fn scan(&self) -> bool;
    #[ipc(timeout_secs = 1.5)]
    async fn upload(&self) -> bool;
    #[cfg_attr(debug_assertions, ipc(timeout_secs = 600))]
    async fn debug_dump(&self) -> bool;
}

fn main() {}
