import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// The check's answer as the contract shapes it, written by hand (compared with the general encoder by tests).
extension CheckRoutes {
    /// A window as the answer shows it: open at the time of sending, and when it closes (absent when it never
    /// opened).
    struct WindowView: Encodable, Equatable {
        let open: Bool
        let closesAt: Date?
    }

    /// The WhatsApp half of an answer (absent on SMS and e-mail). `pricingCategory` is null when the send is
    /// refused, and written as null rather than left out.
    struct PlatformView: Equatable {
        let billable: Bool
        let pricingCategory: String?
        let pricingRule: String
        let serviceWindow: WindowView
        let freeEntryPoint: WindowView

        init(_ pricing: PlatformPricing) {
            billable = pricing.billable
            pricingCategory = pricing.pricingCategory?.rawValue
            pricingRule = pricing.rule.id
            serviceWindow = WindowView(open: pricing.windowOpen, closesAt: pricing.window.closesAt)
            freeEntryPoint = WindowView(open: pricing.entryPointOpen, closesAt: pricing.entryPoint.closesAt)
        }
    }

    struct PredictedErrorView: Encodable, Equatable {
        let code: String
        let message: String
    }

    /// Written by hand (`json()`); `Encodable` for the test that compares it with the shared encoder.
    struct CheckView: Encodable, ResponseGenerator {
        let allowed: Bool
        let reason: String
        let category: String
        let consentId: String?
        let grantedAt: Date?
        let revokedAt: Date?
        let platform: PlatformView?
        let predictedError: PredictedErrorView?

        init(_ decision: SendDecision, consent: ConsentState) {
            allowed = decision.allowed
            reason = decision.reason.rawValue
            category = decision.category.rawValue
            switch consent {
            case .none: (consentId, grantedAt, revokedAt) = (nil, nil, nil)
            case .granted(let id, let at): (consentId, grantedAt, revokedAt) = (id.lowercased, at, nil)
            case .pending(let id): (consentId, grantedAt, revokedAt) = (id.lowercased, nil, nil)
            case .withdrawn(let id, let at): (consentId, grantedAt, revokedAt) = (id.lowercased, nil, at)
            }
            platform = decision.pricing.map(PlatformView.init)
            predictedError = decision.predictedError.map { PredictedErrorView(code: $0.code, message: $0.message) }
        }

        enum Key: String, CodingKey {
            case allowed, billable, category, consentId, freeEntryPoint, grantedAt, predictedError, pricingCategory,
                pricingRule, reason, revokedAt, serviceWindow
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(allowed, forKey: .allowed)
            try container.encode(reason, forKey: .reason)
            try container.encode(category, forKey: .category)
            try container.encodeIfPresent(consentId, forKey: .consentId)
            try container.encodeIfPresent(grantedAt, forKey: .grantedAt)
            try container.encodeIfPresent(revokedAt, forKey: .revokedAt)
            try container.encodeIfPresent(predictedError, forKey: .predictedError)
            if let platform {
                try container.encode(platform.billable, forKey: .billable)
                try container.encode(platform.pricingCategory, forKey: .pricingCategory)
                try container.encode(platform.pricingRule, forKey: .pricingRule)
                try container.encode(platform.serviceWindow, forKey: .serviceWindow)
                try container.encode(platform.freeEntryPoint, forKey: .freeEntryPoint)
            }
        }

        func response(from request: Request, context: some RequestContext) throws -> Response {
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json())
            )
        }

        /// The keys in the shared encoder's (sorted) order.
        func json() -> ByteBuffer {
            var json = ByteBuffer()
            json.reserveCapacity(384)
            json.writeStaticString(allowed ? #"{"allowed":true"# : #"{"allowed":false"#)
            if let platform {
                json.writeStaticString(platform.billable ? #","billable":true"# : #","billable":false"#)
            }
            json.writeStaticString(#","category":"#)
            JSONWriter.writeString(category, to: &json)
            if let consentId {
                json.writeStaticString(#","consentId":"#)
                JSONWriter.writeString(consentId, to: &json)
            }
            if let platform {
                json.writeStaticString(#","freeEntryPoint":"#)
                Self.write(platform.freeEntryPoint, to: &json)
            }
            if let grantedAt {
                json.writeStaticString(#","grantedAt":"#)
                JSONWriter.writeTime(grantedAt, to: &json)
            }
            if let predictedError {
                json.writeStaticString(#","predictedError":{"code":"#)
                JSONWriter.writeString(predictedError.code, to: &json)
                json.writeStaticString(#","message":"#)
                JSONWriter.writeString(predictedError.message, to: &json)
                json.writeStaticString("}")
            }
            if let platform {
                json.writeStaticString(#","pricingCategory":"#)
                JSONWriter.writeStringOrNull(platform.pricingCategory, to: &json)
                json.writeStaticString(#","pricingRule":"#)
                JSONWriter.writeString(platform.pricingRule, to: &json)
            }
            json.writeStaticString(#","reason":"#)
            JSONWriter.writeString(reason, to: &json)
            if let revokedAt {
                json.writeStaticString(#","revokedAt":"#)
                JSONWriter.writeTime(revokedAt, to: &json)
            }
            if let platform {
                json.writeStaticString(#","serviceWindow":"#)
                Self.write(platform.serviceWindow, to: &json)
            }
            json.writeStaticString("}")
            return json
        }

        private static func write(_ window: WindowView, to json: inout ByteBuffer) {
            json.writeStaticString("{")
            if let closesAt = window.closesAt {
                json.writeStaticString(#""closesAt":"#)
                JSONWriter.writeTime(closesAt, to: &json)
                json.writeStaticString(",")
            }
            json.writeStaticString(window.open ? #""open":true}"# : #""open":false}"#)
        }
    }
}
