import ConsentCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import Testing

/// A receiver of change webhooks on a loopback port: it keeps every request it gets and answers each with the
/// status `answer` picks for it (by arrival number, from 1), so a test can make it fail for a while.
final class WebhookReceiver: Sendable {
    struct Received: Sendable {
        let id: String
        let timestamp: String
        let signature: String
        let body: [UInt8]
        /// What this receiver answered.
        let answered: Int

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
        }
        var type: String { json["type"] as? String ?? "" }
        var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    }

    private let log = Mutex<[Received]>([])
    private let answer: Mutex<@Sendable (Int) -> Int>

    init(answer: @escaping @Sendable (Int) -> Int) {
        self.answer = Mutex(answer)
    }

    var received: [Received] { log.withLock { $0 } }
    /// The requests it answered with a 2xx: what the sender counts as delivered.
    var accepted: [Received] { received.filter { (200..<300).contains($0.answered) } }

    func answer(with choice: @escaping @Sendable (Int) -> Int) { answer.withLock { $0 = choice } }

    fileprivate func take(_ request: Request) async throws -> Response {
        let body = try await request.body.collect(upTo: 1 << 20)
        let header = { (name: String) in HTTPField.Name(name).flatMap { request.headers[$0] } ?? "" }
        let status = log.withLock { log in
            let status = answer.withLock { $0 }(log.count + 1)
            log.append(
                Received(
                    id: header("webhook-id"), timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"), body: Array(body.readableBytesView), answered: status))
            return status
        }
        return Response(status: HTTPResponse.Status(code: status))
    }

    /// Waits until `enough` holds of what was received, for up to `seconds`.
    func until(
        _ what: String, seconds: Double = 30, _ enough: @Sendable ([Received]) -> Bool
    ) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if enough(received) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the receiver did not get \(what) within \(seconds) s; it got \(received.map(\.type))")
        throw ReceiverTimeout()
    }

    struct ReceiverTimeout: Error {}
}

/// Runs a receiver for the duration of `body`, which gets it and its URL.
func withWebhookReceiver<Value: Sendable>(
    answer: @escaping @Sendable (Int) -> Int = { _ in 204 },
    _ body: @escaping @Sendable (WebhookReceiver, String) async throws -> Value
) async throws -> Value {
    let receiver = WebhookReceiver(answer: answer)
    let router = Router()
    router.post("/hook") { request, _ in try await receiver.take(request) }
    let port = Mutex<Int?>(nil)
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "receiver"),
        onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
        logger: Logger(label: "webhook-receiver"))
    return try await withThrowingTaskGroup(of: Value?.self) { group in
        group.addTask {
            try await app.run()
            return nil
        }
        var bound: Int?
        for _ in 0..<400 where bound == nil {
            bound = port.withLock { $0 }
            if bound == nil { try await Task.sleep(for: .milliseconds(25)) }
        }
        guard let bound else { throw WebhookReceiver.ReceiverTimeout() }
        let result: Result<Value, any Error>
        do { result = .success(try await body(receiver, "http://127.0.0.1:\(bound)/hook")) } catch {
            result = .failure(error)
        }
        group.cancelAll()
        return try result.get()
    }
}

/// Verifies a delivery's signature with Python's hmac and base64 modules, an implementation that shares nothing
/// with the service's: true when one of the header's `v1,` signatures is the secret's over `id.timestamp.body`.
func verifiedByPython(_ delivery: WebhookReceiver.Received, secret: String) throws -> Bool {
    let script = """
        import base64, hmac, hashlib, os, sys
        secret = os.environ["SECRET"]
        assert secret.startswith("whsec_")
        key = base64.b64decode(secret[len("whsec_"):])
        body = base64.b64decode(os.environ["BODY"])
        signed = os.environ["ID"].encode() + b"." + os.environ["TS"].encode() + b"." + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        ok = any(part.startswith("v1,") and hmac.compare_digest(part[3:], expected)
                 for part in os.environ["SIG"].split(" "))
        print("valid" if ok else "invalid")
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    process.environment = [
        "SECRET": secret, "BODY": Data(delivery.body).base64EncodedString(), "ID": delivery.id,
        "TS": delivery.timestamp, "SIG": delivery.signature, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "",
    ]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    process.waitUntilExit()
    let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return printed.trimmingCharacters(in: .whitespacesAndNewlines) == "valid"
}
