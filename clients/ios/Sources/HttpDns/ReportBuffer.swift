import Foundation

/// Pending connect-time reports, grouped per host, drained at most once per interval. Thread safe.
final class ReportBuffer: @unchecked Sendable { // state guarded by `lock`
    struct Report: Encodable, Equatable, Sendable {
        let ip: String
        let rtt_ms: Int64
        let ok: Bool
    }

    private struct Body: Encodable {
        let host: String
        let reports: [Report]
    }

    private let lock = NSLock()
    private var pending: [(host: String, reports: [Report])] = []
    private var count = 0
    private var lastFlushMs: Int64
    private let maxPending: Int

    init(nowMs: Int64, maxPending: Int) {
        lastFlushMs = nowMs
        self.maxPending = maxPending
    }

    /// Adds a report; false (dropped) when the buffer is full.
    @discardableResult
    func add(host: String, ip: String, rttMs: Int64, ok: Bool) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if count >= maxPending { return false }
        let r = Report(ip: ip, rtt_ms: max(0, rttMs), ok: ok)
        if let i = pending.firstIndex(where: { $0.host == host }) {
            pending[i].reports.append(r)
        } else {
            pending.append((host: host, reports: [r]))
        }
        count += 1
        return true
    }

    var size: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }

    /// Everything pending if `force` or `intervalMs` passed since the last drain; else empty.
    func drain(nowMs: Int64, intervalMs: Int64, force: Bool) -> [(host: String, reports: [Report])] {
        lock.lock()
        defer { lock.unlock() }
        if count == 0 || (!force && nowMs - lastFlushMs < intervalMs) { return [] }
        let out = pending
        pending = []
        count = 0
        lastFlushMs = nowMs
        return out
    }

    /// The POST /report body for one host.
    static func json(host: String, reports: [Report]) -> Data {
        return (try? JSONEncoder().encode(Body(host: host, reports: reports))) ?? Data()
    }
}
