//! The async runtime the server runs on, sized to the CPUs it may use.
//!
//! With one CPU (an affinity mask or a cgroup quota of one, as in a container limited
//! to a core) the server runs on a current-thread runtime: a multi-thread runtime with
//! its single worker pays for work stealing it can never do on every task it spawns
//! and wakes, and hyper's HTTP/2 spawns a task per stream. Measured on the example
//! config, server pinned to one CPU, h2load 64 connections × 4 streams: h2c `/resolve`
//! 135–141k q/s on the multi-thread runtime, 176–184k on the current-thread one, four
//! interleaved rounds; HTTP/1.1 the same on both (BENCH.md). With more CPUs, a worker
//! per CPU with work stealing, as tokio sizes it by default.

use std::io;
use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Runtime};

/// The runtime for `cpus` CPUs: current-thread for one, else a worker each.
pub fn for_cpus(cpus: NonZeroUsize) -> io::Result<Runtime> {
    if cpus.get() == 1 {
        Builder::new_current_thread().enable_all().build()
    } else {
        Builder::new_multi_thread()
            .worker_threads(cpus.get())
            .enable_all()
            .build()
    }
}

/// The runtime for the CPUs this process may run on
/// ([`std::thread::available_parallelism`]: affinity mask and cgroup quota).
pub fn for_this_process() -> io::Result<Runtime> {
    for_cpus(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::runtime::RuntimeFlavor;

    #[test]
    fn one_cpu_runs_on_the_current_thread_and_more_get_a_worker_each() {
        let one = for_cpus(NonZeroUsize::MIN).unwrap();
        assert_eq!(one.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        // Spawned tasks and timers run: the server's listeners and health checks need both.
        let answered = one.block_on(async {
            let task = tokio::spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                42
            });
            task.await.unwrap()
        });
        assert_eq!(answered, 42);

        let three = for_cpus(NonZeroUsize::new(3).unwrap()).unwrap();
        assert_eq!(three.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(three.metrics().num_workers(), 3);
    }
}
