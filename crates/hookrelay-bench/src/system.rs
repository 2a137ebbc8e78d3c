//! Facts about the machine and this process, from Linux's `/proc`. Elsewhere they read as
//! unknown.

use std::path::Path;

/// The peak resident set size of this whole process (`VmHWM`), in bytes: the server, the load
/// generator and the receiver together, since they all run here.
pub fn peak_rss_bytes() -> Option<u64> {
    vm_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in bytes.
pub fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0, `echo 5 > /proc/self/clear_refs`), so the
/// next reading is the peak of what follows. False where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The type of the file system holding `path` (e.g. `ext4`, `tmpfs`): it decides what an
/// fsync costs, so what durable ingest costs.
pub fn filesystem_of(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            // Spaces in mount points are written as \040.
            let mount_point = fields.next()?.replace("\\040", " ");
            let fs_type = fields.next()?;
            path.starts_with(&mount_point)
                .then(|| (mount_point.len(), fs_type.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs_type)| fs_type)
}

pub fn cores() -> Option<usize> {
    std::thread::available_parallelism().ok().map(usize::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_vm_hwm() {
        let status = "Name:\thookrelay\nVmPeak:\t  99999 kB\nVmHWM:\t   40960 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(super::vm_hwm(status), Some(40 * 1024 * 1024));
        assert_eq!(super::vm_hwm("Name:\tx\n"), None);
    }
}
