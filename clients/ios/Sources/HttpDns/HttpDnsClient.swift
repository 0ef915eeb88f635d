import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// HTTPDNS client: resolves host names through `GET /resolve` on a list of HTTPDNS servers (addressed
/// by IP, so it never needs LocalDNS itself), caches answers, refreshes them in the background, serves
/// stale answers when the servers fail, and falls back to the system resolver.
///
/// Thread safe. `resolve*` never blocks its caller longer than `config.timeoutMs`; network work runs on
/// SDK queues. Mirrors the Android SDK's `io.httpdns.sdk.HttpDnsClient`.
public final class HttpDnsClient {
    private struct CacheEntry {
        let answer: HostAnswer
        let expiresAt: Int64
        let refreshAt: Int64
        let staleUntil: Int64
        /// Read through `resolve*` since it was stored: worth refreshing in the background.
        var used = false

        init(answer: HostAnswer, now: Int64, config: HttpDnsConfig) {
            self.answer = answer
            let ttlMs = Int64(answer.ttl) * 1000
            expiresAt = now + ttlMs
            refreshAt = now + Int64(Double(ttlMs) * config.refreshRatio)
            staleUntil = expiresAt + config.maxStaleMs
        }
    }

    /// One in-flight request; callers asking for the same host list share it.
    private final class FetchOp {
        let group = DispatchGroup()
        var result: Result<[String: HostAnswer], Error>? // written once, before group.leave()
        init() { group.enter() }
    }

    private final class Box<T> {
        var value: T?
    }

    public let config: HttpDnsConfig
    private let transport: HttpTransport
    private let clock: HttpDnsClock
    private let lock = NSLock()
    private var cache: [String: CacheEntry] = [:]
    private var inflight: [String: FetchOp] = [:]
    private var refreshing = Set<String>()
    private var preferredIndex = 0
    private var epoch: Int64 = 0
    private var lastResponseValue: ResolveResponse?
    private var lastErrorValue: Error?
    private let reports: ReportBuffer
    private let queue = DispatchQueue(label: "io.httpdns.sdk.worker", attributes: .concurrent)
    private var timer: DispatchSourceTimer?

    public init(config: HttpDnsConfig, transport: HttpTransport = URLSessionTransport()) {
        precondition(!config.servers.isEmpty, "at least one server is required")
        precondition(config.systemDnsBudgetMs >= 0 && config.systemDnsBudgetMs < config.timeoutMs,
                     "systemDnsBudgetMs must be in [0, timeoutMs)")
        var cfg = config
        cfg.preResolveHosts = config.preResolveHosts.compactMap(HttpDnsClient.normalize)
        cfg.maxBatchSize = max(1, config.maxBatchSize)
        self.config = cfg
        self.transport = transport
        self.clock = cfg.clock
        self.reports = ReportBuffer(nowMs: cfg.clock.nowMillis(), maxPending: cfg.maxPendingReports)
        if cfg.tickIntervalMs > 0 {
            let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "io.httpdns.sdk.tick"))
            t.schedule(deadline: .now() + .milliseconds(cfg.tickIntervalMs),
                       repeating: .milliseconds(cfg.tickIntervalMs))
            t.setEventHandler { [weak self] in self?.tick() }
            t.resume()
            timer = t
        }
        if !cfg.preResolveHosts.isEmpty { preResolve(cfg.preResolveHosts) }
    }

    deinit {
        timer?.cancel()
    }

    /// Stops the background tick.
    public func close() {
        lock.lock()
        let t = timer
        timer = nil
        lock.unlock()
        t?.cancel()
    }

    // MARK: resolving

    /// Resolves one host. Check `source` / `isEmpty` on the result.
    public func resolve(_ host: String) -> HostAnswer {
        guard let h = HttpDnsClient.normalize(host) else { return HostAnswer.unresolved(host: host, error: "bad_host") }
        return resolveBatch([h])[h] ?? HostAnswer.unresolved(host: h, error: "bad_host")
    }

    /// Resolves several hosts with at most one request per `maxBatchSize` hosts. Keyed by lower-cased
    /// host name, with an answer for every valid host.
    public func resolveBatch(_ hosts: [String]) -> [String: HostAnswer] {
        let deadline = DispatchTime.now() + .milliseconds(config.timeoutMs)
        let httpDeadline = DispatchTime.now() + .milliseconds(config.timeoutMs - config.systemDnsBudgetMs)
        var wanted: [String] = []
        for h in hosts { if let n = HttpDnsClient.normalize(h), !wanted.contains(n) { wanted.append(n) } }

        var result: [String: HostAnswer] = [:]
        var expired: [String: CacheEntry] = [:]
        var errors: [String: String] = [:]
        var toFetch: [String] = []
        var toSystem: [String] = []
        var toRefresh: [String] = []
        var now = clock.nowMillis()
        lock.lock()
        for h in wanted {
            if config.systemDnsFilter(h) {
                toSystem.append(h)
                continue
            }
            if var e = cache[h], now < e.expiresAt {
                e.used = true
                cache[h] = e
                result[h] = e.answer.withSource(.cache)
                if now >= e.refreshAt { toRefresh.append(h) }
            } else {
                toFetch.append(h)
                if let e = cache[h] { expired[h] = e }
            }
        }
        lock.unlock()
        if !toRefresh.isEmpty { refreshAsync(toRefresh) }
        if !toFetch.isEmpty {
            let fetched = awaitFetch(toFetch, deadline: httpDeadline)
            now = clock.nowMillis()
            for h in toFetch {
                let a = fetched[h]
                if let a = a, a.error == nil, !a.isEmpty {
                    result[h] = a
                } else if a == nil, let old = expired[h], now <= old.staleUntil {
                    result[h] = old.answer.withSource(.stale)
                } else {
                    toSystem.append(h)
                    errors[h] = a == nil ? "httpdns_unavailable" : (a?.error ?? "empty_answer")
                }
            }
        }
        if !toSystem.isEmpty {
            for (h, a) in systemResolve(toSystem, deadline: deadline, errors: errors) { result[h] = a }
        }
        return result
    }

    /// The cached answer (fresh: `.cache`, expired but within max staleness: `.stale`) or nil. No network.
    public func peek(_ host: String) -> HostAnswer? {
        guard let h = HttpDnsClient.normalize(host) else { return nil }
        lock.lock()
        let e = cache[h]
        lock.unlock()
        guard let entry = e else { return nil }
        let now = clock.nowMillis()
        if now < entry.expiresAt { return entry.answer.withSource(.cache) }
        if now <= entry.staleUntil { return entry.answer.withSource(.stale) }
        return nil
    }

    /// Addresses to try after a connection to `failedIp` failed, from the cached answer and without a
    /// new query: the rest of the primary addresses, then each fallback zone in order. Empty if not cached.
    public func nextAddresses(host: String, failedIp: String?) -> [String] {
        return peek(host)?.nextAddresses(after: failedIp) ?? []
    }

    /// Fetches `hosts` in the background (batched) and caches them; `completion` runs when done.
    public func preResolve(_ hosts: [String], completion: (() -> Void)? = nil) {
        var list: [String] = []
        for h in hosts {
            if let n = HttpDnsClient.normalize(h), !config.systemDnsFilter(n), !list.contains(n) { list.append(n) }
        }
        queue.async {
            for chunk in self.chunks(list) {
                do { _ = try self.fetch(chunk, deadline: self.taskDeadline()) } catch { self.setError(error) }
            }
            completion?()
        }
    }

    /// Drops every cached answer.
    public func clearCache() {
        lock.lock()
        cache.removeAll()
        lock.unlock()
    }

    /// Call when the device's network changes: clears the cache, resets rotation, pre-resolves again.
    public func onNetworkChanged() {
        lock.lock()
        cache.removeAll()
        preferredIndex = 0
        lock.unlock()
        if !config.preResolveHosts.isEmpty { preResolve(config.preResolveHosts) }
    }

    /// Housekeeping run by the background tick: refresh answers past the refresh point, flush reports.
    public func tick() {
        _ = refreshExpiring()
        _ = flushReportsIfDue()
    }

    /// Starts background refreshes for cached answers past `refreshRatio` of their TTL that were read
    /// since they were stored (or are pre-resolved hosts). Returns how many hosts.
    @discardableResult
    public func refreshExpiring() -> Int {
        let now = clock.nowMillis()
        lock.lock()
        let due = cache.filter { item in
            now >= item.value.refreshAt && now <= item.value.staleUntil
                && (item.value.used || config.preResolveHosts.contains(item.key))
        }.map { $0.key }
        lock.unlock()
        return refreshAsync(due)
    }

    // MARK: speed reports

    /// Records how long a TCP connect to `ip` (an address of `host`) took, or that it failed. Reports are
    /// batched and sent to `POST /report` at most once per report interval.
    public func reportConnect(host: String, ip: String, rttMs: Int64, ok: Bool) {
        guard let h = HttpDnsClient.normalize(host) else { return }
        reports.add(host: h, ip: ip, rttMs: rttMs, ok: ok)
        _ = flushReportsIfDue()
    }

    /// Sends pending reports if the report interval has passed since the last send.
    @discardableResult
    public func flushReportsIfDue() -> Bool {
        return sendReports(reports.drain(nowMs: clock.nowMillis(), intervalMs: config.reportIntervalMs, force: false))
    }

    /// Sends pending reports now (e.g. when the app goes to background).
    @discardableResult
    public func flushReports() -> Bool {
        return sendReports(reports.drain(nowMs: clock.nowMillis(), intervalMs: config.reportIntervalMs, force: true))
    }

    public var pendingReports: Int { return reports.size }

    /// Optional active probe: TCP-connects to each primary address of the cached answer on `port` and
    /// records the connect times with `reportConnect`.
    public func probe(host: String, port: Int, completion: (() -> Void)? = nil) {
        let addrs = peek(host)?.addresses ?? []
        queue.async {
            for ip in addrs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let ok = self.config.prober.probe(ip: ip, port: port, timeoutMs: self.config.probeTimeoutMs)
                let ms = Int64((DispatchTime.now().uptimeNanoseconds - t0) / 1_000_000)
                self.reportConnect(host: host, ip: ip, rttMs: ms, ok: ok)
            }
            completion?()
        }
    }

    // MARK: state

    /// Newest epoch seen (body or X-Httpdns-Epoch header), 0 before any response.
    public var currentEpoch: Int64 {
        lock.lock()
        defer { lock.unlock() }
        return epoch
    }

    /// The last successful /resolve response (client IP and geo as the server saw them).
    public var lastResponse: ResolveResponse? {
        lock.lock()
        defer { lock.unlock() }
        return lastResponseValue
    }

    /// The last error met, for diagnostics.
    public var lastError: Error? {
        lock.lock()
        defer { lock.unlock() }
        return lastErrorValue
    }

    /// The server currently tried first (the last one that answered).
    public var preferredServer: String {
        lock.lock()
        defer { lock.unlock() }
        return config.servers[preferredIndex]
    }

    /// Expiry time (clock millis) of the cached entry, or -1; for tests.
    func expiresAt(_ host: String) -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        return cache[host]?.expiresAt ?? -1
    }

    // MARK: internals

    private func setError(_ e: Error) {
        lock.lock()
        lastErrorValue = e
        lock.unlock()
    }

    private func awaitFetch(_ hosts: [String], deadline: DispatchTime) -> [String: HostAnswer] {
        let ops = chunks(hosts).map { fetchShared($0) }
        var out: [String: HostAnswer] = [:]
        for op in ops {
            guard op.group.wait(timeout: deadline) == .success else { continue } // goes on in the background
            if case .success(let m)? = op.result {
                out.merge(m) { a, _ in a }
            }
        }
        return out
    }

    private func fetchShared(_ hosts: [String]) -> FetchOp {
        let key = hosts.joined(separator: ",")
        lock.lock()
        if let existing = inflight[key] {
            lock.unlock()
            return existing
        }
        let op = FetchOp()
        inflight[key] = op
        lock.unlock()
        queue.async {
            let r = Result<[String: HostAnswer], Error> { try self.fetch(hosts, deadline: self.taskDeadline()) }
            op.result = r
            self.lock.lock()
            if self.inflight[key] === op { self.inflight[key] = nil }
            for h in hosts { self.refreshing.remove(h) }
            self.lock.unlock()
            op.group.leave()
        }
        return op
    }

    @discardableResult
    private func refreshAsync(_ hosts: [String]) -> Int {
        lock.lock()
        let todo = hosts.filter { refreshing.insert($0).inserted }
        lock.unlock()
        for chunk in chunks(todo) { _ = fetchShared(chunk) }
        return todo.count
    }

    /// A background request may outlive the caller's wait; it still ends: every server gets one try.
    private func taskDeadline() -> DispatchTime {
        return DispatchTime.now() + .milliseconds(config.servers.count * (config.connectTimeoutMs + config.readTimeoutMs))
    }

    private static func msUntil(_ deadline: DispatchTime) -> Int {
        let now = DispatchTime.now().uptimeNanoseconds
        let end = deadline.uptimeNanoseconds
        return end > now ? Int((end - now) / 1_000_000) : 0
    }

    /// Queries the servers in rotation order; caches and returns the answers keyed by host.
    func fetch(_ hosts: [String], deadline: DispatchTime) throws -> [String: HostAnswer] {
        let hostParam = hosts.joined(separator: ",")
        var q = "/resolve?host=" + hosts.map(HttpDnsClient.enc).joined(separator: ",")
        q += "&type=" + HttpDnsClient.enc(config.queryType)
        if let ip = config.clientIp { q += "&ip=" + HttpDnsClient.enc(ip) }
        if config.tokenProvider != nil || config.secret != nil {
            let t = clock.nowMillis() / 1000 + config.signValiditySeconds
            var sign: String?
            if let provider = config.tokenProvider {
                sign = provider(hostParam, t)
            } else if let secret = config.secret {
                sign = Signer.sign(secret: secret, hostParam: hostParam, expiry: t)
            }
            if let s = sign { q += "&t=\(t)&sign=" + HttpDnsClient.enc(s) }
        }
        let n = config.servers.count
        lock.lock()
        let start = preferredIndex
        lock.unlock()
        var last: Error?
        for i in 0..<n {
            let idx = (start + i) % n
            let remaining = HttpDnsClient.msUntil(deadline)
            if remaining <= 0 { break }
            let server = config.servers[idx]
            guard let url = URL(string: HttpDnsClient.baseUrl(server) + q) else {
                last = HttpDnsError.transport("bad server address \(server)")
                continue
            }
            let r: HttpResponse
            do {
                r = try transport.exchange(method: "GET", url: url, body: nil,
                                           timeoutMs: min(config.connectTimeoutMs + config.readTimeoutMs, remaining))
            } catch {
                last = error
                continue
            }
            if r.status == 200 {
                do {
                    let parsed = try ResolveResponse.parse(r.body)
                    lock.lock()
                    preferredIndex = idx
                    lock.unlock()
                    let headerEpoch = Int64((r.epochHeader ?? "").trimmingCharacters(in: .whitespaces)) ?? 0
                    return store(parsed, headerEpoch: headerEpoch)
                } catch {
                    last = error
                    continue
                }
            }
            last = HttpDnsError.http(status: r.status, body: String(decoding: r.body, as: UTF8.self))
            // 4xx: the request itself is wrong (bad host, bad signature); other servers would agree.
            if (400..<500).contains(r.status) { break }
        }
        let err = last ?? HttpDnsError.timeout
        setError(err)
        throw err
    }

    private func store(_ resp: ResolveResponse, headerEpoch: Int64) -> [String: HostAnswer] {
        let respEpoch = max(resp.epoch, headerEpoch)
        let now = clock.nowMillis()
        var out: [String: HostAnswer] = [:]
        lock.lock()
        if respEpoch > epoch {
            cache.removeAll() // configuration changed on the server: every cached answer may be wrong
            epoch = respEpoch
        }
        for a in resp.answers {
            out[a.host] = a
            if a.error == nil && !a.isEmpty && a.ttl > 0 {
                cache[a.host] = CacheEntry(answer: a, now: now, config: config)
            } else {
                cache[a.host] = nil
            }
        }
        lastResponseValue = resp
        lock.unlock()
        if config.autoProbePort > 0 {
            for a in resp.answers where !a.isEmpty { probe(host: a.host, port: config.autoProbePort) }
        }
        return out
    }

    private func systemResolve(_ hosts: [String], deadline: DispatchTime, errors: [String: String]) -> [String: HostAnswer] {
        var pending: [(String, Box<[String]>, DispatchGroup)] = []
        for h in hosts {
            let box = Box<[String]>()
            let group = DispatchGroup()
            group.enter()
            queue.async {
                box.value = try? self.config.systemDns.lookup(h)
                group.leave()
            }
            pending.append((h, box, group))
        }
        var out: [String: HostAnswer] = [:]
        for (h, box, group) in pending {
            if group.wait(timeout: deadline) == .timedOut {
                out[h] = HostAnswer.unresolved(host: h, error: errors[h] ?? "timeout")
            } else if let addrs = box.value, !addrs.isEmpty {
                out[h] = HostAnswer.fromSystem(host: h, addresses: addrs)
            } else {
                out[h] = HostAnswer.unresolved(host: h, error: errors[h] ?? "system_dns_failed")
            }
        }
        return out
    }

    private func sendReports(_ batch: [(host: String, reports: [ReportBuffer.Report])]) -> Bool {
        if batch.isEmpty { return false }
        queue.async {
            for item in batch { self.postReport(ReportBuffer.json(host: item.host, reports: item.reports)) }
        }
        return true
    }

    private func postReport(_ body: Data) {
        let n = config.servers.count
        lock.lock()
        let start = preferredIndex
        lock.unlock()
        for i in 0..<n {
            let server = config.servers[(start + i) % n]
            guard let url = URL(string: HttpDnsClient.baseUrl(server) + "/report") else { continue }
            do {
                let r = try transport.exchange(method: "POST", url: url, body: body,
                                               timeoutMs: config.connectTimeoutMs + config.readTimeoutMs)
                if r.status < 500 {
                    if r.status != 200 { setError(HttpDnsError.http(status: r.status, body: String(decoding: r.body, as: UTF8.self))) }
                    return // sent, or rejected as bad input (another server would reject it too)
                }
            } catch {
                setError(error)
            }
        }
    }

    private func chunks(_ hosts: [String]) -> [[String]] {
        return stride(from: 0, to: hosts.count, by: config.maxBatchSize).map {
            Array(hosts[$0..<min(hosts.count, $0 + config.maxBatchSize)])
        }
    }

    static func normalize(_ host: String) -> String? {
        var h = host.trimmingCharacters(in: .whitespaces).lowercased()
        if h.hasSuffix(".") { h.removeLast() }
        if h.isEmpty || h.contains(",") { return nil }
        return h
    }

    static func baseUrl(_ server: String) -> String {
        var s = server.trimmingCharacters(in: .whitespaces)
        if !s.contains("://") { s = "http://" + s }
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }

    private static let queryAllowed: CharacterSet = {
        var set = CharacterSet.alphanumerics
        set.insert(charactersIn: "-._~,:")
        return set
    }()

    static func enc(_ s: String) -> String {
        return s.addingPercentEncoding(withAllowedCharacters: queryAllowed) ?? s
    }
}
