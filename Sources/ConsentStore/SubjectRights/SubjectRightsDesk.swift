import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// What a completed request did: the export it answers with (access, portability), or the erasure it carried out.
public enum RequestFulfilment: Sendable {
    /// Nil when nothing is held about the person any more (erased since the request was made).
    case exported(SubjectExport?)
    case erased(ErasureResult)
    /// Nil when the person was erased since: the erasure kept what the objection needs, or nothing was held.
    case objected(ObjectionResult?)

    /// The word the request's audit event and answer carry.
    public var outcome: String {
        switch self {
        case .exported(let export): export == nil ? "nothing_held" : "exported"
        case .erased(let result): result.erasedNow ? "erased" : "already_erased"
        case .objected(let result): result == nil ? "nothing_held" : "objected"
        }
    }
}

public struct CompletedRequest: ConsentStateChanging {
    public let request: SubjectRequestRecord
    public let fulfilment: RequestFulfilment

    public var changes: [ConsentChange] {
        switch fulfilment {
        case .erased(let result): result.changes
        case .objected(let result): result?.changes ?? []
        case .exported: []
        }
    }
}

extension SubjectRequestRecord: ConsentStateChanging {
    public var changes: [ConsentChange] { [] }
}

/// The DPO's writes about data subjects, each one unit of work: erasure (Art. 17), and requests with their
/// one-month due dates (Art. 12(3)) from receipt to completion or cancellation.
public struct SubjectRightsDesk: Sendable {
    let keyring: TenantKeyring
    let exporter: SubjectExporter
    let suppression: Bool

    public init(keyring: TenantKeyring, exporter: SubjectExporter, suppression: Bool) {
        self.keyring = keyring
        self.exporter = exporter
        self.suppression = suppression
    }

    /// Erases whoever the identifier finds; `objection` keeps the person on the suppression list even if they
    /// never withdrew (Art. 21).
    public func erase(_ identifier: SubjectIdentifier, objection: Bool, caller: CallerIdentity) -> UnitOfWork<
        ErasureResult
    > {
        UnitOfWork(tenantId: caller.tenantId) { [keyring, suppression] connection, logger in
            try await SubjectErasure.erase(
                identifier,
                blindIndex: try await keyring.blindIndex(
                    identifier, on: connection, tenantId: caller.tenantId, logger: logger),
                objection: objection, tenantId: caller.tenantId, caller: caller, keyring: keyring,
                suppression: suppression, on: connection, logger: logger)
        }
    }

    public func openRequest(
        _ type: SubjectRequestType, about identifier: SubjectIdentifier, receivedAt: Date, caller: CallerIdentity
    ) -> UnitOfWork<SubjectRequestRecord> {
        UnitOfWork(tenantId: caller.tenantId) { [keyring] connection, logger in
            try await SubjectRequests.create(
                type: type,
                blindIndex: try await keyring.blindIndex(
                    identifier, on: connection, tenantId: caller.tenantId, logger: logger),
                channel: identifier.channel, receivedAt: receivedAt, tenantId: caller.tenantId, caller: caller,
                on: connection, logger: logger)
        }
    }

    /// Carries the request out and closes it in one transaction: the export bundle for access and portability,
    /// the erasure for erasure. Run `exporter.prepare` first, so the bundle's proofs have a checkpoint.
    public func completeRequest(_ id: UUID, caller: CallerIdentity) -> UnitOfWork<CompletedRequest> {
        UnitOfWork(tenantId: caller.tenantId) { [keyring, exporter, suppression] connection, logger in
            let pending = try await SubjectRequests.lockPending(id, on: connection, logger: logger)
            let fulfilment: RequestFulfilment
            switch pending.type {
            case .access, .portability:
                fulfilment = .exported(
                    try await exporter.gather(
                        subjectId: pending.subjectRef, tenantId: caller.tenantId, answering: pending.id, on: connection,
                        logger: logger))
            case .erasure:
                fulfilment = .erased(
                    try await SubjectErasure.erase(
                        subjectId: pending.subjectRef, objection: false, requestId: pending.id,
                        tenantId: caller.tenantId,
                        caller: caller, keyring: keyring, suppression: suppression, on: connection, logger: logger))
            case .objection:
                // Art. 21(3): direct marketing stops, from the time the person objected.
                let identifier = try await SubjectDirectory.identifier(
                    of: pending.subjectRef, keyring: keyring, on: connection, logger: logger)
                if let identifier {
                    fulfilment = .objected(
                        try await ConsentLedger.object(
                            Objection(
                                subjects: [identifier], scope: .marketing, source: .dpo, occurredAt: pending.receivedAt),
                            id: pending.id, tenantId: caller.tenantId, caller: caller, keyring: keyring,
                            on: connection, logger: logger))
                } else {
                    fulfilment = .objected(nil)
                }
            }
            let closed = try await SubjectRequests.close(
                pending, as: .completed, outcome: fulfilment.outcome, tenantId: caller.tenantId, caller: caller,
                on: connection, logger: logger)
            return CompletedRequest(request: closed, fulfilment: fulfilment)
        }
    }

    public func cancelRequest(_ id: UUID, caller: CallerIdentity) -> UnitOfWork<SubjectRequestRecord> {
        UnitOfWork(tenantId: caller.tenantId) { connection, logger in
            let pending = try await SubjectRequests.lockPending(id, on: connection, logger: logger)
            return try await SubjectRequests.close(
                pending, as: .cancelled, outcome: "cancelled", tenantId: caller.tenantId, caller: caller,
                on: connection,
                logger: logger)
        }
    }
}
