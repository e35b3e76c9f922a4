//! `system`: read-only information about the machine, from `sysinfo`.

use std::sync::Mutex;

use super::contract::{System, SystemInfo};

/// The `system` handler: a `sysinfo` reader, refreshed on each call.
#[derive(Default)]
pub struct SystemHandler {
    sys: Mutex<sysinfo::System>,
}

impl System for SystemHandler {
    async fn info(&self) -> SystemInfo {
        let (total_memory, used_memory) = {
            let mut sys = self.sys.lock().unwrap_or_else(|e| e.into_inner());
            sys.refresh_memory();
            (sys.total_memory(), sys.used_memory())
        };
        let unknown = || "unknown".to_string();
        SystemInfo {
            hostname: sysinfo::System::host_name().unwrap_or_else(unknown),
            os: sysinfo::System::long_os_version().unwrap_or_else(unknown),
            kernel: sysinfo::System::kernel_version().unwrap_or_else(unknown),
            uptime_secs: sysinfo::System::uptime(),
            total_memory,
            used_memory,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            main_pid: std::process::id(),
        }
    }
}
