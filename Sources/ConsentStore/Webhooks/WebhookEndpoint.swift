import ConsentCore
import Foundation

/// A registered receiver of change webhooks, as its admin sees it (never its secret, which is shown once).
public struct WebhookEndpoint: Sendable, Equatable {
    public enum Status: String, Sendable {
        case active
        /// Held after repeated failure (or by nothing else): deliveries are queued and wait until it is enabled.
        case disabled
    }

    public let id: UUID
    public let url: String
    public let description: String
    public let events: [WebhookEventType]
    public let status: Status
    public let disabledAt: Date?
    public let disabledReason: String?
    public let createdAt: Date
    /// Until when the secret before the last rotation still signs, if it does.
    public let previousSecretValidUntil: Date?
}

/// A new endpoint and its signing secret: the only time the secret leaves the store.
public struct CreatedWebhookEndpoint: Sendable {
    public let endpoint: WebhookEndpoint
    public let secret: WebhookSecret
}

public struct RotatedWebhookSecret: Sendable {
    public let endpoint: WebhookEndpoint
    public let secret: WebhookSecret
}

/// One event for one endpoint, and every attempt to deliver it.
public struct WebhookDelivery: Sendable, Equatable {
    public enum State: String, Sendable {
        case pending, delivered, failed
    }

    public let id: Int64
    public let eventId: UUID
    public let type: String
    public let state: State
    public let createdAt: Date
    public let nextAttemptAt: Date?
    public let completedAt: Date?
    public let redeliveryOf: Int64?
    public let attempts: [WebhookAttempt]
}

public struct WebhookAttempt: Sendable, Equatable {
    public let attempt: Int
    public let at: Date
    /// Nil when no answer came (`error` says why).
    public let statusCode: Int?
    public let latencyMilliseconds: Int
    public let error: String?
}

/// A manual send: the delivery queued and the event it carries.
public struct QueuedWebhookDelivery: Sendable, Equatable {
    public let deliveryId: Int64
    public let eventId: UUID
}

public enum WebhookEndpointError: Error, Equatable {
    case notFound
    case deliveryNotFound
    /// The URL is not one the service sends to (`WebhookTargetPolicy`).
    case targetRefused(WebhookTargetRefusal)
    case unknownEvents([String])
    case tooManyEndpoints(limit: Int)
}
