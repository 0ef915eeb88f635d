import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// HTTPDNS client: resolves host names through `GET /resolve` over HTTPS on resolvers addressed by IP,
/// caches answers, refreshes them in the background, serves stale answers when the resolvers fail, and
/// falls back to the system resolver. Mirrors the Android SDK's `io.httpdns.sdk.HttpDnsClient`.
///
/// Thread safe (`Sendable`). `resolveNonBlocking` never touches the network on the calling thread;
/// `resolve` is `async` and never blocks a thread; network work runs in tasks.
public final class HttpDnsClient: Sendable {
    private struct State {
        var cache: AnswerCache
        var backoff: ServerBackoff
        var inflight: [String: Task<[String: HostAnswer], Error>] = [:]
        var refreshing = Set<String>()
        var preferred = 0
        var lastError: Error?
        var lastResponse: ResolveResponse?
        /// Server time minus device time, from the last Date header.
        var clockSkewMs: Int64 = 0
        var detectedQueryType: String?
        var closed = false
        var tickTask: Task<Void, Never>?
        var saveScheduled = false
    }

    private static let skewRetryMs: Int64 = 30_000

    public let config: HttpDnsConfig
    private let endpoints: [ServerEndpoint]
    private let transport: HttpTransport
    private let reports: ReportBuffer
    private let state: Locked<State>

    /// Throws `HttpDnsError.malformed` for a bad server entry, PEM, pin or tlsServerName.
    public convenience init(config: HttpDnsConfig) throws {
        let endpoints = try config.servers.map(ServerEndpoint.parse)
        try self.init(config: config, transport: URLSessionTransport(endpoints: endpoints, policy: TlsPolicy(config: config)))
    }

    init(config: HttpDnsConfig, transport: HttpTransport) throws {
        guard !config.servers.isEmpty else { throw HttpDnsError.malformed("at least one server is required") }
        guard config.systemDnsBudgetMs >= 0 && config.systemDnsBudgetMs < config.timeoutMs else {
            throw HttpDnsError.malformed("systemDnsBudgetMs must be in [0, timeoutMs)")
        }
        guard ["auto", "A", "AAAA", "A,AAAA"].contains(config.queryType) else {
            throw HttpDnsError.malformed("queryType must be auto, A, AAAA or A,AAAA")
        }
        _ = try TlsPolicy(config: config) // validates PEM, pins and the server name
        var cfg = config
        cfg.preResolveHosts = config.preResolveHosts.compactMap(HttpDnsClient.normalize)
        cfg.maxBatchSize = max(1, config.maxBatchSize)
        self.config = cfg
        self.endpoints = try cfg.servers.map(ServerEndpoint.parse)
        self.transport = transport
        self.reports = ReportBuffer(nowMs: cfg.clock.nowMillis(), maxPending: cfg.maxPendingReports)
        self.state = Locked(State(cache: AnswerCache(maxEntries: cfg.maxCacheEntries),
                                  backoff: ServerBackoff(servers: cfg.servers.count, baseMs: cfg.backoffBaseMs,
                                                         maxMs: cfg.backoffMaxMs)))
        for ep in endpoints where !ep.https {
            cfg.logger(.warn, "HTTPDNS server \(ep.entry) uses cleartext http: answers can be forged on-path", nil)
        }
        if let store = cfg.cacheStore { loadCache(store) }
        if cfg.tickIntervalMs > 0 {
            let interval = UInt64(cfg.tickIntervalMs) * 1_000_000
            let tick = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: interval)
                    self?.tick()
                }
            }
            state.with { $0.tickTask = tick }
        }
        if !cfg.preResolveHosts.isEmpty { preResolve(cfg.preResolveHosts) }
    }

    /// Stops the background work, saves the cache, invalidates the URLSession.
    public func close() {
        let tick: Task<Void, Never>? = state.with { s in
            s.closed = true
            defer { s.tickTask = nil }
            return s.tickTask
        }
        tick?.cancel()
        if let store = config.cacheStore { saveCache(store) }
        transport.invalidate()
    }

    // MARK: resolving

    /// Returns at once, with no network on the calling thread: the cached answer (`.cache`), an expired one
    /// within `maxStaleMs` (`.stale`) while a refresh starts in the background, or an empty answer (`.none`)
    /// while the first fetch starts. Filtered and unknown hosts also give `.none`: use the system resolver.
    public func resolveNonBlocking(_ host: String) -> HostAnswer {
        guard let h = HttpDnsClient.normalize(host) else { return HostAnswer.unresolved(host: host, error: "bad_host") }
        if IpLiteral.isLiteral(h) { return HostAnswer.literal(h) }
        if config.systemDnsFilter(h) { return HostAnswer.unresolved(host: h, error: "system_dns_host") }
        let now = config.clock.nowMillis()
        enum Plan { case answer(HostAnswer, refresh: Bool), pending }
        let plan: Plan = state.with { s in
            guard let e = s.cache.get(h) else { return .pending }
            if e.negative && now < e.expiresAt { return .answer(HostAnswer.unresolved(host: h, error: e.answer.error ?? "unknown_host"), refresh: false) }
            if e.negative { return .pending }
            s.cache.markUsed(h)
            if s.cache.fresh(e, now: now) { return .answer(e.answer.withSource(.cache), refresh: now >= e.refreshAt) }
            if now <= e.staleUntil { return .answer(e.answer.withSource(.stale), refresh: true) }
            return .pending
        }
        switch plan {
        case let .answer(a, refresh):
            if refresh { refreshAsync([h]) }
            return a
        case .pending:
            refreshAsync([h])
            return HostAnswer.unresolved(host: h, error: "pending")
        }
    }

    /// Resolves one host within `timeoutMs`; never blocks a thread.
    public func resolve(_ host: String) async -> HostAnswer {
        guard let h = HttpDnsClient.normalize(host) else { return HostAnswer.unresolved(host: host, error: "bad_host") }
        return await resolveBatch([h])[h] ?? HostAnswer.unresolved(host: h, error: "bad_host")
    }

    /// Completion-handler variant of `resolve`; `completion` runs on an SDK task.
    public func resolve(_ host: String, completion: @escaping @Sendable (HostAnswer) -> Void) {
        Task { completion(await self.resolve(host)) }
    }

    /// Resolves several hosts with at most one request per `maxBatchSize` hosts, within `timeoutMs`.
    public func resolveBatch(_ hosts: [String]) async -> [String: HostAnswer] {
        var wanted: [String] = []
        for h in hosts { if let n = HttpDnsClient.normalize(h), !wanted.contains(n) { wanted.append(n) } }
        var result: [String: HostAnswer] = [:]
        var stale: [String: HostAnswer] = [:]
        var errors: [String: String] = [:]
        var toFetch: [String] = []
        var toSystem: [String] = []
        var toRefresh: [String] = []
        let now = config.clock.nowMillis()
        let anyHealthy: Bool = state.with { s in
            for h in wanted {
                if IpLiteral.isLiteral(h) {
                    result[h] = HostAnswer.literal(h)
                } else if config.systemDnsFilter(h) {
                    toSystem.append(h)
                } else if let e = s.cache.get(h), e.negative, now < e.expiresAt {
                    toSystem.append(h)
                    errors[h] = e.answer.error
                } else if let e = s.cache.get(h), !e.negative, s.cache.fresh(e, now: now) {
                    s.cache.markUsed(h)
                    result[h] = e.answer.withSource(.cache)
                    if now >= e.refreshAt { toRefresh.append(h) }
                } else {
                    toFetch.append(h)
                    if let e = s.cache.get(h), !e.negative, now <= e.staleUntil {
                        s.cache.markUsed(h)
                        stale[h] = e.answer
                    }
                }
            }
            return s.backoff.anyHealthy
        }
        if !toRefresh.isEmpty { refreshAsync(toRefresh) }
        if !toFetch.isEmpty {
            var fetched: [String: HostAnswer] = [:]
            if anyHealthy {
                let tasks = chunks(toFetch).map(fetchShared)
                let budget = config.timeoutMs - config.systemDnsBudgetMs
                let got = await waitAtMost(budget) { () async -> [String: HostAnswer]? in
                    var all: [String: HostAnswer] = [:]
                    for t in tasks { if let m = try? await t.value { all.merge(m) { a, _ in a } } }
                    return all
                }
                fetched = got ?? [:]
            } else {
                refreshAsync(toFetch) // every server is backing off: probe in the background, do not wait
            }
            for h in toFetch {
                let a = fetched[h]
                if let a = a, a.error == nil, !a.isEmpty {
                    result[h] = a
                } else if let old = stale[h], a?.error != "unknown_host" {
                    result[h] = old.withSource(.stale)
                } else {
                    toSystem.append(h)
                    errors[h] = a == nil ? "httpdns_unavailable" : (a?.error ?? "empty_answer")
                }
            }
        }
        for h in toSystem { result[h] = await systemResolve(h, prior: errors[h]) }
        return result
    }

    /// The cached answer (`.cache`, or `.stale` past TTL / older epoch within max staleness) or nil.
    public func peek(_ host: String) -> HostAnswer? {
        guard let h = HttpDnsClient.normalize(host) else { return nil }
        let now = config.clock.nowMillis()
        return state.with { s in
            guard let e = s.cache.get(h), !e.negative else { return nil }
            if s.cache.fresh(e, now: now) { return e.answer.withSource(.cache) }
            return now <= e.staleUntil ? e.answer.withSource(.stale) : nil
        }
    }

    /// Addresses to try after `failedIp` failed, from the cached answer without a new query.
    public func nextAddresses(host: String, failedIp: String?) -> [String] {
        return peek(host)?.nextAddresses(after: failedIp) ?? []
    }

    /// Fetches `hosts` in the background (batched) and caches them.
    @discardableResult
    public func preResolve(_ hosts: [String]) -> Task<Void, Never> {
        var list: [String] = []
        for h in hosts {
            if let n = HttpDnsClient.normalize(h), !IpLiteral.isLiteral(n), !config.systemDnsFilter(n), !list.contains(n) { list.append(n) }
        }
        let batches = chunks(list)
        return Task {
            for b in batches { _ = try? await self.fetch(b) }
        }
    }

    public func clearCache() {
        state.with { $0.cache.clear() }
    }

    /// Call on a network change (NWPathMonitor): clears the cache, forgets failures and the IP stack, pre-resolves.
    public func onNetworkChanged() {
        state.with { s in
            s.cache.clear()
            s.preferred = 0
            s.backoff.reset()
            s.detectedQueryType = nil
        }
        if !config.preResolveHosts.isEmpty { preResolve(config.preResolveHosts) }
    }

    /// Housekeeping (run by the background tick): refresh due answers, flush reports.
    public func tick() {
        refreshExpiring()
        flushReportsIfDue()
    }

    @discardableResult
    public func refreshExpiring() -> Int {
        let now = config.clock.nowMillis()
        return refreshAsync(state.with { $0.cache.due(now: now, alwaysWanted: config.preResolveHosts) })
    }

    // MARK: reports

    public func reportConnect(host: String, ip: String, rttMs: Int64, ok: Bool) {
        guard let h = HttpDnsClient.normalize(host) else { return }
        reports.add(host: h, ip: ip, rttMs: rttMs, ok: ok)
        flushReportsIfDue()
    }

    @discardableResult
    public func flushReportsIfDue() -> Bool {
        return send(reports.drain(nowMs: config.clock.nowMillis(), intervalMs: config.reportIntervalMs, force: false))
    }

    @discardableResult
    public func flushReports() -> Bool {
        return send(reports.drain(nowMs: config.clock.nowMillis(), intervalMs: config.reportIntervalMs, force: true))
    }

    public var pendingReports: Int { reports.size }

    /// TCP-connects to each primary address of the cached answer and reports the connect times.
    public func probe(host: String, port: Int) async {
        let addrs = peek(host)?.addresses ?? []
        let prober = config.prober
        let timeout = config.probeTimeoutMs
        for ip in addrs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let ok = await offPool { prober.probe(ip: ip, port: port, timeoutMs: timeout) }
            reportConnect(host: host, ip: ip, rttMs: Int64((DispatchTime.now().uptimeNanoseconds - t0) / 1_000_000), ok: ok)
        }
    }

    // MARK: state

    public var currentEpoch: Int64 { state.with { $0.cache.epoch } }
    public var lastResponse: ResolveResponse? { state.with { $0.lastResponse } }
    /// The last error; TLS failures are `HttpDnsError.tls(kind, _)`.
    public var lastError: Error? { state.with { $0.lastError } }
    public var clockSkewMs: Int64 { state.with { $0.clockSkewMs } }
    public var preferredServer: String { config.servers[state.with { $0.preferred }] }
    var cacheCount: Int { state.with { $0.cache.count } }

    // MARK: internals

    private func systemResolve(_ h: String, prior: String?) async -> HostAnswer {
        let sys = config.systemDns
        let got = await waitAtMost(config.systemDnsBudgetMs + 50) { () async -> [String]? in
            await offPool { try? sys.lookup(h) }
        }
        if let addrs = got, !addrs.isEmpty { return HostAnswer.fromSystem(host: h, addresses: addrs) }
        return HostAnswer.unresolved(host: h, error: prior ?? (got == nil ? "timeout" : "system_dns_failed"))
    }

    private func fetchShared(_ hosts: [String]) -> Task<[String: HostAnswer], Error> {
        let key = hosts.joined(separator: ",")
        return state.with { s in
            if let t = s.inflight[key] { return t }
            let t = Task { () async throws -> [String: HostAnswer] in
                defer { self.state.with { s in
                    s.inflight[key] = nil
                    s.refreshing.subtract(hosts)
                } }
                return try await self.fetch(hosts)
            }
            s.inflight[key] = t
            return t
        }
    }

    @discardableResult
    private func refreshAsync(_ hosts: [String]) -> Int {
        let todo: [String] = state.with { s in hosts.filter { s.refreshing.insert($0).inserted } }
        for c in chunks(todo) { _ = fetchShared(c) }
        return todo.count
    }

    /// Healthy servers from the preferred one on; else one server due for a probe.
    private func candidates() -> [Int] {
        let now = config.clock.nowMillis()
        let n = endpoints.count
        return state.with { s in
            let healthy = (0..<n).map { (s.preferred + $0) % n }.filter { s.backoff.healthy($0) }
            if !healthy.isEmpty { return healthy }
            for i in 0..<n where s.backoff.claimProbe(i, now: now) { return [i] }
            return []
        }
    }

    func fetch(_ hosts: [String]) async throws -> [String: HostAnswer] {
        var last: Error?
        for idx in candidates() {
            do {
                let out = try await fetchFrom(idx, hosts)
                probeRecoveredServers(hosts)
                return out
            } catch HttpDnsError.http(let status, let body) where status >= 400 && status < 500 {
                last = HttpDnsError.http(status: status, body: body)
                break // other servers would say the same
            } catch {
                last = error
            }
        }
        let err = last ?? HttpDnsError.unavailable
        state.with { $0.lastError = err }
        throw err
    }

    private func queryType() -> String {
        if config.queryType != "auto" { return config.queryType }
        if let t = state.with({ $0.detectedQueryType }) { return t }
        var t = config.ipStackDetector.queryType()
        if t != "A" && t != "AAAA" { t = "A,AAAA" }
        state.with { $0.detectedQueryType = t }
        return t
    }

    private func resolveURL(_ idx: Int, _ hosts: [String]) -> URL? {
        let hostsParam = hosts.joined(separator: ",")
        // With ip=, the server signs host + "\n" + ip + "\n" + t: the subject grows.
        let hostParam = config.clientIp.map { hostsParam + "\n" + $0 } ?? hostsParam
        var q = "host=" + hosts.map(HttpDnsClient.enc).joined(separator: ",") + "&type=" + HttpDnsClient.enc(queryType())
        if let ip = config.clientIp { q += "&ip=" + HttpDnsClient.enc(ip) }
        if config.tokenProvider != nil || config.secret != nil {
            // Signed with the server's idea of now: a device clock off by minutes still gets answers.
            let t = (config.clock.nowMillis() + clockSkewMs) / 1000 + config.signValiditySeconds
            let sign = config.tokenProvider.map { $0(hostParam, t) } ?? config.secret.map { Signer.sign(secret: $0, hostParam: hostParam, expiry: t) }
            if let sign = sign { q += "&t=\(t)&sign=" + HttpDnsClient.enc(sign) }
        }
        return URL(string: endpoints[idx].baseUrl + "/resolve?" + q)
    }

    private func fetchFrom(_ idx: Int, _ hosts: [String]) async throws -> [String: HostAnswer] {
        let ep = endpoints[idx]
        let signed = config.tokenProvider != nil || config.secret != nil
        var attempt = 0
        while true {
            attempt += 1
            guard let url = resolveURL(idx, hosts) else { throw HttpDnsError.malformed("bad host list") }
            // Backoff windows count from the attempt's start: deterministic under a test clock.
            let startedAt = config.clock.nowMillis()
            let r: HttpResponse
            do {
                r = try await transport.exchange(server: idx, method: "GET", url: url, body: nil,
                                                 timeoutMs: config.connectTimeoutMs + config.readTimeoutMs)
            } catch {
                let d = state.with { s -> Int64 in
                    s.lastError = error
                    return s.backoff.failure(idx, now: startedAt)
                }
                var isTls = false
                if let e = error as? HttpDnsError, case .tls = e { isTls = true }
                config.logger(isTls ? .error : .warn, "HTTPDNS server \(ep.entry) failed (\(error)); skipped for \(d) ms", error)
                throw error
            }
            let skewChange = observeDate(r.dateMs)
            if r.status == 200 {
                let parsed = try ResolveResponse.parse(r.body)
                state.with { s in
                    s.backoff.success(idx)
                    s.preferred = idx
                }
                return store(parsed, headerEpoch: Int64(r.epochHeader ?? "") ?? 0)
            }
            if signed && attempt == 1 && (r.status == 401 || r.status == 403) && abs(skewChange) > HttpDnsClient.skewRetryMs {
                config.logger(.info, "device clock is \(clockSkewMs) ms off the server's; re-signing", nil)
                continue
            }
            state.with { s in
                if r.status >= 500 { s.backoff.failure(idx, now: startedAt) } else { s.backoff.success(idx) }
            }
            throw HttpDnsError.http(status: r.status, body: String(decoding: r.body, as: UTF8.self))
        }
    }

    /// Updates the clock correction from a Date header; returns how much it moved.
    private func observeDate(_ dateMs: Int64) -> Int64 {
        guard dateMs > 0 else { return 0 }
        var skew = dateMs - config.clock.nowMillis()
        if abs(skew) < 2000 { skew = 0 } // Date has one-second resolution
        return state.with { s in
            let change = skew - s.clockSkewMs
            s.clockSkewMs = skew
            return change
        }
    }

    /// Servers past their backoff get one trial request in the background; callers never wait on it.
    private func probeRecoveredServers(_ hosts: [String]) {
        let now = config.clock.nowMillis()
        let due: [Int] = state.with { s in (0..<endpoints.count).filter { s.backoff.claimProbe($0, now: now) } }
        for idx in due {
            Task { _ = try? await self.fetchFrom(idx, hosts) }
        }
    }

    private func store(_ resp: ResolveResponse, headerEpoch: Int64) -> [String: HostAnswer] {
        let epoch = max(resp.epoch, headerEpoch)
        let now = config.clock.nowMillis()
        var out: [String: HostAnswer] = [:]
        state.with { s in
            // A newer epoch makes older entries due for refresh; they stay as stale fallbacks meanwhile.
            s.cache.observeEpoch(epoch)
            for a in resp.answers {
                out[a.host] = a
                if a.error == nil && !a.isEmpty && a.ttl > 0 {
                    s.cache.put(a.host, AnswerCache.positive(a, now: now, epoch: epoch, config: config))
                } else if a.error == "unknown_host" && config.negativeTtlMs > 0 {
                    s.cache.put(a.host, AnswerCache.negative(a, now: now, epoch: epoch, config: config))
                }
            }
            s.lastResponse = resp
        }
        scheduleSave()
        return out
    }

    private func loadCache(_ store: CacheStore) {
        do {
            if let snap = try store.load() {
                let now = config.clock.nowMillis()
                let cfg = config
                _ = try state.with { s in try s.cache.load(snap, now: now, config: cfg) }
            }
        } catch {
            state.with { $0.lastError = error }
            config.logger(.warn, "could not load the saved HTTPDNS cache; starting empty: \(error)", error)
        }
    }

    private func saveCache(_ store: CacheStore) {
        let now = config.clock.nowMillis()
        let snap = state.with { s -> String in
            s.cache.purge(now: now)
            return s.cache.snapshot()
        }
        do {
            try store.save(snap)
        } catch {
            config.logger(.warn, "could not save the HTTPDNS cache: \(error)", error)
        }
    }

    private func scheduleSave() {
        guard let store = config.cacheStore else { return }
        let first = state.with { s -> Bool in
            defer { s.saveScheduled = true }
            return !s.saveScheduled && !s.closed
        }
        guard first else { return }
        Task {
            try? await Task.sleep(nanoseconds: 2_000_000_000)
            self.state.with { $0.saveScheduled = false }
            self.saveCache(store)
        }
    }

    private func send(_ batch: [(host: String, reports: [ReportBuffer.Report])]) -> Bool {
        if batch.isEmpty { return false }
        let bodies = batch.map { ReportBuffer.json(host: $0.host, reports: $0.reports) }
        Task {
            for body in bodies { await self.postReport(body) }
        }
        return true
    }

    private func postReport(_ body: Data) async {
        for idx in candidates() {
            guard let url = URL(string: endpoints[idx].baseUrl + "/report") else { continue }
            do {
                let r = try await transport.exchange(server: idx, method: "POST", url: url, body: body,
                                                     timeoutMs: config.connectTimeoutMs + config.readTimeoutMs)
                if r.status < 500 { return }
            } catch {
                let now = config.clock.nowMillis()
                state.with { s in
                    s.lastError = error
                    s.backoff.failure(idx, now: now)
                }
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

    private static func enc(_ s: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
