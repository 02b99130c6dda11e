/// A JSON object whose values are all strings or null, read without building a general JSON tree: the shape of
/// nearly every check request. It answers nil for anything it does not read exactly as a JSON parser would (any
/// other value type, any backslash escape, a duplicate key, invalid UTF-8, a control character in a string,
/// trailing bytes), so that its caller can hand those bodies to the general decoder, which reads them or explains
/// what is wrong. It never accepts a body the general decoder would refuse.
public enum FlatJSONObject {
    /// The object's members, a null value as nil; nil when the body is not such an object.
    public static func parse(_ bytes: some Collection<UInt8>) -> [String: String?]? {
        var reader = Reader(bytes: Array(bytes))
        return reader.object()
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func object() -> [String: String?]? {
            skipWhitespace()
            guard take(UInt8(ascii: "{")) else { return nil }
            var members: [String: String?] = [:]
            skipWhitespace()
            if take(UInt8(ascii: "}")) { return finished() ? members : nil }
            while true {
                skipWhitespace()
                guard let key = string() else { return nil }
                skipWhitespace()
                guard take(UInt8(ascii: ":")) else { return nil }
                skipWhitespace()
                let value: String?
                if take(UInt8(ascii: "n")) {
                    guard take(UInt8(ascii: "u")), take(UInt8(ascii: "l")), take(UInt8(ascii: "l")) else { return nil }
                    value = nil
                } else {
                    guard let text = string() else { return nil }
                    value = text
                }
                // A key seen before, even with a null value (stored as `.some(nil)`): decoders differ on which wins.
                guard members.updateValue(value, forKey: key) == nil else { return nil }
                skipWhitespace()
                if take(UInt8(ascii: ",")) { continue }
                guard take(UInt8(ascii: "}")) else { return nil }
                return finished() ? members : nil
            }
        }

        /// A string without escapes, as valid UTF-8 without control characters.
        mutating func string() -> String? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let text = String(validating: bytes[start..<index], as: UTF8.self)
                    index += 1
                    return text
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
                index += 1
            }
            return nil
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func finished() -> Bool {
            skipWhitespace()
            return index == bytes.count
        }
    }
}
