import ConsentCore
import Foundation
import Logging
import ServiceLifecycle

/// The deliverer as a managed service, in every instance, in `lanes` loops. Claims are safe to make from several
/// loops and instances at once (a claimed delivery is left alone until its lease lapses, and per endpoint and person
/// only the oldest pending one is ever due), so no leader is elected and no connection is held: each round borrows a
/// pooled connection for its claim and one for its record, under `databaseDeadline`, and none during the HTTP
/// attempts. A loop rounds back to back while there is work, and every `interval` when there is none. On shutdown,
/// attempts in flight are cut short and recorded as due at once; a process killed outright leaves its claims to
/// lapse.
public struct WebhookDeliveryService: Service {
    let database: ConsentDatabase
    let policy: WebhookTargetPolicy
    let schedule: WebhookRetrySchedule
    let interval: Duration
    let logger: Logger

    /// A round's database steps end within this, whatever the network does.
    static let databaseDeadline: Duration = .seconds(15)

    public init(
        database: ConsentDatabase, policy: WebhookTargetPolicy, schedule: WebhookRetrySchedule = .standard,
        interval: Duration = .seconds(1), logger: Logger
    ) {
        self.database = database
        self.policy = policy
        self.schedule = schedule
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        let transport = HTTPWebhookTransport()
        let deliverer = WebhookDeliverer(
            database: database, transport: transport, policy: policy, schedule: schedule,
            databaseDeadline: Self.databaseDeadline)
        await cancelWhenGracefulShutdown {
            // One loop looks for work every `interval`; the others wait until it finds some, so that an idle
            // instance costs the database one short statement a second, not one per loop (the test suite runs
            // hundreds of instances, some on pools of two connections).
            let (wakeups, waker) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(Self.lanes))
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await look(deliverer) {
                        for _ in 1..<Self.lanes { waker.yield() }
                    }
                    waker.finish()
                }
                for _ in 1..<Self.lanes {
                    group.addTask {
                        for await _ in wakeups { await deliverRounds(deliverer) }
                    }
                }
            }
        }
        await transport.shutdown()
    }

    /// Rounds at a time while there is work: a round waits for its slowest attempt (up to the 10 s timeout), so one
    /// slow receiver would otherwise hold up every delivery of this instance; lanes claim apart as several
    /// instances do.
    static let lanes = 4

    /// The first loop: rounds every `interval`, waking the others whenever it found something to send.
    private func look(_ deliverer: WebhookDeliverer, found: () -> Void) async {
        while !Task.isCancelled {
            if await deliverRounds(deliverer) > 0 { found() }
            try? await Task.sleep(for: interval)
        }
    }

    /// Rounds until nothing is due; answers how many attempts they made.
    @discardableResult
    private func deliverRounds(_ deliverer: WebhookDeliverer) async -> Int {
        do {
            return try await deliverer.deliverDue(logger: logger)
        } catch is CancellationError {
            return 0
        } catch {
            logger.warning(
                "webhooks: a delivery round failed; retrying",
                metadata: ["error": "\(String(reflecting: type(of: error)))"])
            return 0
        }
    }
}
