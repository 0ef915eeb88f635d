import Foundation

/// The answer cache (same rules as Android's `AnswerCache`): LRU-bounded, TTL / refresh point /
/// staleness per entry, negative entries for `unknown_host`, and the configuration epoch. A newer
/// epoch marks older entries for refresh instead of deleting them. Not thread safe: the client keeps
/// it inside its locked state.
struct AnswerCache: Sendable {
    struct Entry: Sendable {
        var answer: HostAnswer
        var storedAt: Int64
        var expiresAt: Int64
        var refreshAt: Int64
        var staleUntil: Int64
        var epoch: Int64
        var negative: Bool
        var used = false
        /// Recency for LRU eviction.
        var touched: UInt64 = 0
    }

    let maxEntries: Int
    private(set) var epoch: Int64 = 0
    private var entries: [String: Entry] = [:]
    private var tick: UInt64 = 0

    init(maxEntries: Int) {
        self.maxEntries = max(1, maxEntries)
    }

    var count: Int { entries.count }

    static func positive(_ a: HostAnswer, now: Int64, epoch: Int64, config: HttpDnsConfig) -> Entry {
        let ttlMs = Int64(a.ttl) * 1000
        return Entry(answer: a, storedAt: now, expiresAt: now + ttlMs, refreshAt: now + Int64(Double(ttlMs) * config.refreshRatio),
                     staleUntil: now + ttlMs + config.maxStaleMs, epoch: epoch, negative: false)
    }

    static func negative(_ a: HostAnswer, now: Int64, epoch: Int64, config: HttpDnsConfig) -> Entry {
        let until = now + config.negativeTtlMs
        return Entry(answer: a, storedAt: now, expiresAt: until, refreshAt: until, staleUntil: until, epoch: epoch, negative: true)
    }

    func fresh(_ e: Entry, now: Int64) -> Bool { now < e.expiresAt && e.epoch >= epoch }

    mutating func get(_ host: String) -> Entry? {
        guard var e = entries[host] else { return nil }
        tick += 1
        e.touched = tick
        entries[host] = e
        return e
    }

    mutating func markUsed(_ host: String) {
        entries[host]?.used = true
    }

    mutating func put(_ host: String, _ e: Entry) {
        var e = e
        tick += 1
        e.touched = tick
        entries[host] = e
        if entries.count > maxEntries, let oldest = entries.min(by: { $0.value.touched < $1.value.touched })?.key {
            entries[oldest] = nil
        }
    }

    mutating func clear() { entries = [:] }

    /// Notes a response's epoch; true when newer (older entries are now due for refresh).
    @discardableResult
    mutating func observeEpoch(_ e: Int64) -> Bool {
        guard e > epoch else { return false }
        epoch = e
        return true
    }

    func due(now: Int64, alwaysWanted: [String]) -> [String] {
        return entries.filter { host, e in
            !e.negative && (now >= e.refreshAt || e.epoch < epoch) && now <= e.staleUntil && (e.used || alwaysWanted.contains(host))
        }.map { $0.key }
    }

    mutating func purge(now: Int64) {
        entries = entries.filter { now <= $0.value.staleUntil }
    }

    // MARK: snapshot (same JSON as Android's, so a shared format)

    private struct Snapshot: Codable {
        var version: Int
        var epoch: Int64
        var entries: [SavedEntry]
    }

    private struct SavedZone: Codable {
        var zone: String
        var ips: [String]
        var ipsv6: [String]
    }

    private struct SavedEntry: Codable {
        var host: String
        var zone: String?
        var failover: Bool
        var ttl: Int
        var ips: [String]
        var ipsv6: [String]
        var fallback: [SavedZone]
        var stored_at: Int64
        var epoch: Int64
    }

    func snapshot() -> String {
        let saved = entries.values.filter { !$0.negative }.sorted { $0.touched < $1.touched }.map { e in
            SavedEntry(host: e.answer.host, zone: e.answer.zone, failover: e.answer.failover, ttl: e.answer.ttl,
                       ips: e.answer.ips, ipsv6: e.answer.ipsv6,
                       fallback: e.answer.fallback.map { SavedZone(zone: $0.zone, ips: $0.ips, ipsv6: $0.ipsv6) },
                       stored_at: e.storedAt, epoch: e.epoch)
        }
        let data = (try? JSONEncoder().encode(Snapshot(version: 1, epoch: epoch, entries: saved))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Loads a snapshot, dropping entries past their staleness window; returns how many were kept.
    mutating func load(_ json: String, now: Int64, config: HttpDnsConfig) throws -> Int {
        let snap: Snapshot
        do {
            snap = try JSONDecoder().decode(Snapshot.self, from: Data(json.utf8))
        } catch {
            throw HttpDnsError.malformed("cache snapshot: \(error)")
        }
        guard snap.version == 1 else { throw HttpDnsError.malformed("cache snapshot: unknown version") }
        observeEpoch(snap.epoch)
        var kept = 0
        for s in snap.entries {
            let a = HostAnswer(host: s.host, zone: s.zone, failover: s.failover, ttl: s.ttl, ips: s.ips, ipsv6: s.ipsv6,
                               fallback: s.fallback.map { FallbackZone(zone: $0.zone, ips: $0.ips, ipsv6: $0.ipsv6) },
                               error: nil, epoch: s.epoch, source: .httpdns)
            let e = AnswerCache.positive(a, now: s.stored_at, epoch: s.epoch, config: config)
            if now <= e.staleUntil && s.stored_at <= now && !a.isEmpty && entries[s.host] == nil {
                put(s.host, e)
                kept += 1
            }
        }
        return kept
    }
}
