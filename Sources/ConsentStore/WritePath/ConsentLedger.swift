import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// The consent lifecycle's writes: opt-ins, withdrawals, inbound messages and double opt-in confirmations. Each
/// entry point resolves the subject by its blind index, makes the change and appends its audit events in one
/// unit of work, and takes the change's position, which is the client's consistency token and what the check
/// cache is told after the commit. The static functions are the phases the entry points and other units of work
/// (erasure, consent sessions, self-service, the WhatsApp inbox) share, inside their own transaction.
public struct ConsentLedger: Sendable {
    let keyring: TenantKeyring
    /// Refuse imported opt-ins for suppressed people, and keep withdrawals from unknown people as objections.
    let suppression: Bool
    /// How long a double opt-in waits for its confirmation.
    let pendingLifetime: TimeInterval

    public init(
        keyring: TenantKeyring, suppression: Bool,
        pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime
    ) {
        self.keyring = keyring
        self.suppression = suppression
        self.pendingLifetime = pendingLifetime
    }

    /// Someone not yet held joins the other new people's opt-ins that arrive with theirs, in one statement
    /// (`WriteGroups.newOptIns`); someone held, or met twice at once, is recorded alone.
    public func optIn(_ optIn: OptIn, caller: CallerIdentity) -> UnitOfWork<OptInResult> {
        UnitOfWork(tenantId: caller.tenantId, shape: .statement, grouped: groupedOptIn(optIn, caller: caller)) {
            [keyring, suppression, pendingLifetime] connection, logger in
            try await Self.recordOptIn(
                optIn,
                blindIndex: try await keyring.blindIndex(
                    optIn.subject, on: connection, tenantId: caller.tenantId, logger: logger),
                tenantId: caller.tenantId, caller: caller, keyring: keyring, suppression: suppression,
                pendingLifetime: pendingLifetime, on: connection, logger: logger)
        }
    }

    /// The opt-in as a member of a group: nil from it means it is recorded alone.
    private func groupedOptIn(_ optIn: OptIn, caller: CallerIdentity)
        -> @Sendable (WriteGroups, Logger) async throws -> OptInResult?
    {
        { [keyring, suppression] groups, logger in
            guard let item = try Self.newOptIn(optIn, caller: caller, keyring: keyring, suppression: suppression)
            else { return nil }
            switch try await groups.newOptIns.submit(
                item, tenantId: caller.tenantId, expiry: DeadlineConnections.currentExpiry, logger: logger)
            {
            case .recorded(let outcomes, let position):
                let key = ConsentStateCache.Key(
                    tenantId: caller.tenantId, channel: item.channel, blindIndex: item.blindIndex)
                return OptInResult(
                    outcomes: outcomes, collectionId: item.collectionId,
                    change: ConsentChange(key: key, position: position))
            case .refused(let error): throw error
            case .retry: return nil
            }
        }
    }

    /// `purposes` nil withdraws every purpose on the subject's channel.
    public func revoke(
        _ subject: SubjectIdentifier, purposes: [String]?, source: RevocationSource, caller: CallerIdentity
    ) -> UnitOfWork<RevocationResult> {
        UnitOfWork(
            tenantId: caller.tenantId, shape: .statement,
            grouped: groupedRevocation(subject, purposes: purposes, source: source, caller: caller)
        ) { [keyring, suppression] connection, logger in
            try await Self.revoke(
                subject: try await keyring.blindIndex(
                    subject, on: connection, tenantId: caller.tenantId, logger: logger),
                identifier: subject, channel: subject.channel, purposes: purposes, source: source,
                tenantId: caller.tenantId, caller: caller, keyring: keyring, suppression: suppression, on: connection,
                logger: logger)
        }
    }

    /// The withdrawal as a member of a group (`WriteGroups.withdrawals`): nil from it means it is made alone.
    private func groupedRevocation(
        _ subject: SubjectIdentifier, purposes: [String]?, source: RevocationSource, caller: CallerIdentity
    ) -> @Sendable (WriteGroups, Logger) async throws -> RevocationResult? {
        { [keyring, suppression] groups, logger in
            guard
                let item = Self.groupedWithdrawal(
                    subject, purposes: purposes, source: source, caller: caller, keyring: keyring,
                    suppression: suppression)
            else { return nil }
            switch try await groups.withdrawals.submit(
                item, tenantId: caller.tenantId, expiry: DeadlineConnections.currentExpiry, logger: logger)
            {
            case .withdrawn(let revoked, let position):
                let key = ConsentStateCache.Key(
                    tenantId: caller.tenantId, channel: item.channel, blindIndex: item.blindIndex)
                return RevocationResult(revoked: revoked, change: ConsentChange(key: key, position: position))
            case .refused(let error): throw error
            case .retry: return nil
            }
        }
    }

    public func interaction(
        from subject: SubjectIdentifier, occurredAt: Date, text: String?, fromAd: Bool = false, caller: CallerIdentity
    ) -> UnitOfWork<InteractionResult> {
        UnitOfWork(tenantId: caller.tenantId) { [keyring, pendingLifetime] connection, logger in
            try await Self.recordInteraction(
                from: subject,
                blindIndex: try await keyring.blindIndex(
                    subject, on: connection, tenantId: caller.tenantId, logger: logger),
                occurredAt: occurredAt, text: text, fromAd: fromAd, tenantId: caller.tenantId, caller: caller,
                keyring: keyring, pendingLifetime: pendingLifetime, on: connection, logger: logger)
        }
    }

    /// An objection (Art. 21) for each identity given, all in one transaction.
    public func object(_ objection: Objection, caller: CallerIdentity) -> UnitOfWork<ObjectionResult> {
        UnitOfWork(tenantId: caller.tenantId) { [keyring] connection, logger in
            try await Self.object(
                objection, id: UUID(), tenantId: caller.tenantId, caller: caller, keyring: keyring, on: connection,
                logger: logger)
        }
    }

    /// The shop confirmed the person's double opt-in by its own means (a link in an e-mail, a code typed back).
    public func confirm(consentId: UUID, caller: CallerIdentity) -> UnitOfWork<ConfirmOutcome> {
        UnitOfWork(tenantId: caller.tenantId) { [pendingLifetime] connection, logger in
            try await Self.confirm(
                consentId: consentId, lifetime: pendingLifetime, tenantId: caller.tenantId, caller: caller,
                on: connection, logger: logger)
        }
    }
}
