import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// One purpose on one channel over a period: opt-ins granted in it, withdrawals in it, and consents active at its end.
public struct ConsentReportRow: Sendable, Equatable, Encodable {
    public let purpose: String
    public let channel: String
    public let granted: Int
    public let withdrawn: Int
    public let active: Int
}

/// Opt-ins and withdrawals in one week (Monday 00:00 UTC to the next).
public struct WeeklyActivity: Sendable, Equatable {
    public let weekStart: Date
    public let granted: Int
    public let withdrawn: Int

    public init(weekStart: Date, granted: Int, withdrawn: Int) {
        self.weekStart = weekStart
        self.granted = granted
        self.withdrawn = withdrawn
    }
}

/// The figures the DPO reports on, computed from the consents table alone (the same numbers in the API and the
/// console). A consent counts as granted when it was granted (a confirmed double opt-in at its confirmation), as
/// withdrawn when it was withdrawn, and as active at T when granted before T and not withdrawn before T.
public struct ConsentReports: Sendable {
    let client: PostgresClient
    public init(client: PostgresClient) { self.client = client }

    public func consents(tenantId: UUID, from: Date, to: Date, logger: Logger) async throws -> [ConsentReportRow] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT purpose, channel,
                       count(*) FILTER (WHERE granted_at >= \(from) AND granted_at < \(to))::int8,
                       count(*) FILTER (WHERE revoked_at >= \(from) AND revoked_at < \(to))::int8,
                       count(*) FILTER (WHERE granted_at < \(to) AND (revoked_at IS NULL OR revoked_at >= \(to)))::int8
                FROM consents
                WHERE granted_at < \(to)
                GROUP BY purpose, channel
                ORDER BY purpose, channel
                """, logger: logger)
            var report: [ConsentReportRow] = []
            for try await (purpose, channel, granted, withdrawn, active) in rows.decode(
                (String, String, Int64, Int64, Int64).self)
            {
                report.append(
                    ConsentReportRow(
                        purpose: purpose, channel: channel, granted: Int(granted), withdrawn: Int(withdrawn),
                        active: Int(active)))
            }
            return report
        }
    }

    /// The last `weeks` weeks up to and including the one holding `now`, oldest first, with zeros for quiet weeks.
    public func weekly(tenantId: UUID, weeks: Int, now: Date, logger: Logger) async throws -> [WeeklyActivity] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                WITH weeks AS (
                    SELECT generate_series(
                        date_trunc('week', \(now)::timestamptz AT TIME ZONE 'UTC') - make_interval(weeks => \(weeks - 1)::int),
                        date_trunc('week', \(now)::timestamptz AT TIME ZONE 'UTC'), interval '1 week') AS start
                )
                SELECT w.start AT TIME ZONE 'UTC',
                       (SELECT count(*) FROM consents c WHERE c.granted_at >= w.start AT TIME ZONE 'UTC'
                            AND c.granted_at < (w.start + interval '1 week') AT TIME ZONE 'UTC')::int8,
                       (SELECT count(*) FROM consents c WHERE c.revoked_at >= w.start AT TIME ZONE 'UTC'
                            AND c.revoked_at < (w.start + interval '1 week') AT TIME ZONE 'UTC')::int8
                FROM weeks w ORDER BY w.start
                """, logger: logger)
            var series: [WeeklyActivity] = []
            for try await (start, granted, withdrawn) in rows.decode((Date, Int64, Int64).self) {
                series.append(WeeklyActivity(weekStart: start, granted: Int(granted), withdrawn: Int(withdrawn)))
            }
            return series
        }
    }
}
