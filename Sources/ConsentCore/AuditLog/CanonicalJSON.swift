import Foundation

/// A JSON value as RFC 8785 sees it: numbers are IEEE 754 doubles, objects are unordered until serialised.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Parses JSON text (for example jsonb read back from PostgreSQL).
    public static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }
}

public enum CanonicalJSONError: Error, Equatable, CustomStringConvertible {
    case nonFiniteNumber
    public var description: String { "JSON numbers must be finite (RFC 8785 section 3.2.2.3)" }
}

/// RFC 8785 (JSON Canonicalization Scheme): the one byte string a JSON value hashes as. Objects' members sorted
/// by their names' UTF-16 code units, no insignificant white space, strings with the minimal escapes, numbers in
/// ECMAScript's shortest form.
public enum CanonicalJSON {
    public static func serialize(_ value: JSONValue) throws -> [UInt8] {
        var output: [UInt8] = []
        try write(value, into: &output)
        return output
    }

    public static func string(_ value: JSONValue) throws -> String {
        String(decoding: try serialize(value), as: UTF8.self)
    }

    static func write(_ value: JSONValue, into output: inout [UInt8]) throws {
        switch value {
        case .null: output += Array("null".utf8)
        case .bool(let flag): output += Array((flag ? "true" : "false").utf8)
        case .number(let number): output += Array(try ecmaScriptNumber(number).utf8)
        case .string(let text): writeString(text, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (offset, element) in elements.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                try write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            let names = members.keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
            for (offset, name) in names.enumerated() {
                if offset > 0 { output.append(UInt8(ascii: ",")) }
                writeString(name, into: &output)
                output.append(UInt8(ascii: ":"))
                // The name came from the dictionary's own keys.
                try write(members[name] ?? .null, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22: output += [0x5C, 0x22]
            case 0x5C: output += [0x5C, 0x5C]
            case 0x08: output += [0x5C, UInt8(ascii: "b")]
            case 0x09: output += [0x5C, UInt8(ascii: "t")]
            case 0x0A: output += [0x5C, UInt8(ascii: "n")]
            case 0x0C: output += [0x5C, UInt8(ascii: "f")]
            case 0x0D: output += [0x5C, UInt8(ascii: "r")]
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output += Array("\\u00".utf8) + [hex[Int(scalar.value >> 4)], hex[Int(scalar.value & 0xF)]]
            default: output += Array(String(scalar).utf8)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// ECMAScript's Number.prototype.toString for finite doubles (ECMA-262 section 7.1.12.1), built on Swift's
    /// shortest round-tripping digits, which are the same digits ECMAScript requires.
    static func ecmaScriptNumber(_ number: Double) throws(CanonicalJSONError) -> String {
        guard number.isFinite else { throw .nonFiniteNumber }
        if number == 0 { return "0" }  // also -0
        let sign = number < 0 ? "-" : ""
        // Swift's description is the shortest round-trip form, e.g. "1e-07", "1.5e+20", "123.45".
        let text = "\(number.magnitude)"
        let mantissa: Substring
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...].replacingOccurrences(of: "+", with: "")) ?? 0
        } else {
            mantissa = text[...]
        }
        // Digits d1…dk and n such that the value is 0.d1…dk × 10^n.
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = String(parts[0])
        let fractionPart = parts.count > 1 ? String(parts[1]) : ""
        var digits = integerPart + fractionPart
        var n = integerPart.count + exponent
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            n -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        let k = digits.count
        let body: String
        if k <= n && n <= 21 {
            body = digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            body = String(digits.prefix(n)) + "." + String(digits.dropFirst(n))
        } else if -6 < n && n <= 0 {
            body = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            let exponentText = e < 0 ? "-\(-e)" : "+\(e)"
            body =
                k == 1
                ? "\(digits)e\(exponentText)"
                : "\(digits.prefix(1)).\(digits.dropFirst())e\(exponentText)"
        }
        return sign + body
    }
}
