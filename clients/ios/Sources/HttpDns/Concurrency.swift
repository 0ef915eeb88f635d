import Foundation

/// State behind a lock: the client's mutable state is only touched inside `with`, never captured
/// by reference in `@Sendable` closures.
final class Locked<State>: @unchecked Sendable {
    private let lock = NSLock()
    private var state: State

    init(_ state: State) {
        self.state = state
    }

    func with<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

/// Waits for `work` at most `ms` milliseconds and returns nil on timeout. `work` is not cancelled:
/// a request the caller stopped waiting for goes on and fills the cache.
func waitAtMost<T: Sendable>(_ ms: Int, _ work: @escaping @Sendable () async -> T?) async -> T? {
    let once = Locked(false)
    return await withCheckedContinuation { (cont: CheckedContinuation<T?, Never>) in
        let claim: @Sendable () -> Bool = { once.with { done in defer { done = true }; return !done } }
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(max(0, ms)) * 1_000_000)
            if claim() { cont.resume(returning: nil) }
        }
        Task {
            let v = await work()
            if claim() {
                timer.cancel()
                cont.resume(returning: v)
            }
        }
    }
}

/// Runs a blocking call (getaddrinfo, a TCP probe) on a Dispatch queue, off the cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { cont in
        DispatchQueue.global(qos: .utility).async { cont.resume(returning: body()) }
    }
}
