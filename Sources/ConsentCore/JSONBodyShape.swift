/// The shape rules a JSON request body must meet before it is decoded: nesting no deeper than a limit, and no
/// `null` anywhere. The contract's bodies are at most four levels deep, so anything far deeper is an attack on the
/// parser rather than a request; and an optional field is left out, never sent as `null`, so that "absent" has one
/// spelling and the OpenAPI document's types hold exactly.
///
/// One pass over the bytes with an explicit stack: no recursion, so no input can exhaust the call stack. It does
/// not validate JSON (the decoder does that next); on malformed input it may report nothing or a misplaced path.
public enum JSONBodyShape {
    public static let defaultMaxDepth = 32

    public enum Violation: Error, Equatable, Sendable {
        /// Arrays and objects nested deeper than the limit.
        case tooDeep(limit: Int)
        /// A `null` value at this path (`provenance.userAgent`, `subjects[2]`; empty for the whole body).
        case null(path: String)
    }

    /// The first violation in `body`, or nil.
    public static func violation(in body: some Sequence<UInt8>, maxDepth: Int = defaultMaxDepth) -> Violation? {
        var containers: [Container] = []
        var inString = false
        var stringIsKey = false
        var escaped = false
        var stringBytes: [UInt8] = []
        var literal: [UInt8] = []

        func finishLiteral() -> Violation? {
            defer { literal.removeAll(keepingCapacity: true) }
            if literal == Array("null".utf8) { return .null(path: path(containers)) }
            return nil
        }

        for byte in body {
            if inString {
                // Only keys are kept (for the path); values, such as a batch's 10,000 subjects, are skipped over.
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                    if stringIsKey {
                        containers[containers.count - 1] = .object(
                            key: String(decoding: stringBytes, as: UTF8.self), expectingKey: false)
                    }
                    continue
                }
                if stringIsKey { stringBytes.append(byte) }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                if let violation = finishLiteral() { return violation }
                inString = true
                if case .object(_, expectingKey: true)? = containers.last { stringIsKey = true } else { stringIsKey = false }
                stringBytes.removeAll(keepingCapacity: true)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard containers.count < maxDepth else { return .tooDeep(limit: maxDepth) }
                containers.append(byte == UInt8(ascii: "{") ? .object(key: nil, expectingKey: true) : .array(index: 0))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if let violation = finishLiteral() { return violation }
                if !containers.isEmpty { containers.removeLast() }
            case UInt8(ascii: ","):
                if let violation = finishLiteral() { return violation }
                switch containers.last {
                case .object(let key, _)?: containers[containers.count - 1] = .object(key: key, expectingKey: true)
                case .array(let index)?: containers[containers.count - 1] = .array(index: index + 1)
                case nil: break
                }
            case UInt8(ascii: ":"), UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                if let violation = finishLiteral() { return violation }
            default:
                literal.append(byte)
            }
        }
        return finishLiteral()
    }

    enum Container {
        case object(key: String?, expectingKey: Bool)
        case array(index: Int)
    }

    static func path(_ containers: [Container]) -> String {
        var path = ""
        for container in containers {
            switch container {
            case .object(let key?, _): path += path.isEmpty ? key : ".\(key)"
            case .object(nil, _): break
            case .array(let index): path += "[\(index)]"
            }
        }
        return path
    }
}
