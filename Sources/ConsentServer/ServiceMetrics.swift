import ConsentCore
import ConsentStore
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Prometheus
import Synchronization

/// What `GET /metrics` exposes, in Prometheus text format: requests and their latency per route template (never a
/// URL with values in it), check decisions by reason, the check cache's counters, and the audit sequencer's lag.
/// Each application has its own registry (swift-metrics objects made with its own factory), so several servers in
/// one process (the tests) keep separate counts.
public final class ServiceMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let routes = Mutex<[RouteKey: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])
    let decisions = Mutex<[CheckReason: CoreMetrics.Counter]>([:])

    struct RouteKey: Hashable {
        let method: HTTPRequest.Method
        let route: String
        let status: Int
    }

    /// From 50 µs: the check path's target is under a millisecond, so the low buckets carry the detail.
    static let latencyBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(200), .microseconds(300), .microseconds(500),
        .microseconds(750), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        self.registry = registry
        self.factory = factory
    }

    func recordRequest(method: HTTPRequest.Method, route: String, status: HTTPResponse.Status, nanoseconds: Int64) {
        let key = RouteKey(method: method, route: route, status: status.code)
        let (counter, timer) = routes.withLock { routes in
            if let existing = routes[key] { return existing }
            let made = (
                CoreMetrics.Counter(
                    label: "consentd_http_requests_total",
                    dimensions: [("method", method.rawValue), ("route", route), ("status", String(status.code))],
                    factory: factory),
                CoreMetrics.Timer(
                    label: "consentd_http_request_duration_seconds",
                    dimensions: [("method", method.rawValue), ("route", route), ("status", String(status.code))],
                    preferredDisplayUnit: .seconds, factory: factory)
            )
            routes[key] = made
            return made
        }
        counter.increment()
        timer.recordNanoseconds(nanoseconds)
    }

    func recordDecision(_ reason: CheckReason, count: Int = 1) {
        let counter = decisions.withLock { decisions in
            if let existing = decisions[reason] { return existing }
            let made = CoreMetrics.Counter(
                label: "consentd_check_decisions_total", dimensions: [("reason", reason.rawValue)], factory: factory)
            decisions[reason] = made
            return made
        }
        counter.increment(by: count)
    }

    /// The registry's metrics, then the gauges and counters read at scrape time.
    func exposition(cache: ConsentStateCache?, sequencerLag: Double?, pool: PoolUsage? = nil, keys: APIKeyCache? = nil)
        -> String
    {
        var text = registry.emitToString()
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { text += "\(name)\(labels) \(value)\n" }
        }
        if let cache {
            let statistics = cache.statistics
            for (name, value, help) in [
                ("consentd_check_cache_hits_total", statistics.hits, "checks answered from the cache"),
                ("consentd_check_cache_misses_total", statistics.misses, "subjects read from the database"),
                (
                    "consentd_check_cache_evictions_total", statistics.evictions,
                    "subjects evicted to stay within capacity"
                ),
                (
                    "consentd_check_cache_invalidations_total", statistics.invalidations,
                    "changes applied, local and notified"
                ),
            ] {
                family(name, "counter", help, [("", "\(value)")])
            }
            family("consentd_check_cache_entries", "gauge", "subjects held", [("", "\(statistics.entries)")])
            family(
                "consentd_check_cache_listening", "gauge", "1 while change notifications arrive (the cache answers)",
                [("", cache.isListening ? "1" : "0")])
        }
        if let keys {
            family("consentd_key_cache_entries", "gauge", "live API keys held", [("", "\(keys.count)")])
        }
        if let pool {
            family(
                "consentd_db_connections", "gauge",
                "this instance's pooled connections by state, as pg_stat_activity shows them (the scrape's own query is one active)",
                [
                    (#"{state="active"}"#, "\(pool.active)"), (#"{state="idle"}"#, "\(pool.idle)"),
                    (#"{state="idle_in_transaction"}"#, "\(pool.idleInTransaction)"),
                ])
        }
        if let sequencerLag {
            family(
                "consentd_audit_sequencer_lag_seconds", "gauge",
                "age of the oldest event not yet in a signed checkpoint", [("", "\(sequencerLag)")])
        }
        return text
    }
}

/// Counts every request and times it from arrival to the response's head, under its route template.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let metrics: ServiceMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context: context, status: response.status, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            record(request, context: context, status: status, since: start)
            throw error
        }
    }

    func record(_ request: Request, context: Context, status: HTTPResponse.Status, since start: ContinuousClock.Instant)
    {
        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        metrics.recordRequest(
            method: request.method, route: context.endpointPath ?? "unmatched", status: status, nanoseconds: nanoseconds
        )
    }
}

/// `GET /metrics` (no key, like the health checks): counts and timings only, no personal data.
struct MetricsRoutes {
    let metrics: ServiceMetrics
    let keys: APIKeyCache?
    let database: ConsentDatabase

    func register(on router: Router<ConsentRequestContext>) {
        router.get("/metrics") { _, context in
            let lag = try? await database.auditLog.sequencerLag(logger: context.logger)
            let pool = try? await database.poolUsage(logger: context.logger)
            let text = metrics.exposition(cache: database.checkCache, sequencerLag: lag, pool: pool, keys: keys)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
