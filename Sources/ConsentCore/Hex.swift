extension Sequence<UInt8> {
    /// Lower-case hexadecimal, two digits a byte.
    public var hexString: String {
        var out = ""
        for byte in self {
            out.append(Hex.digits[Int(byte >> 4)])
            out.append(Hex.digits[Int(byte & 0x0F)])
        }
        return out
    }
}

enum Hex {
    static let digits = Array("0123456789abcdef")
}

extension Array where Element == UInt8 {
    /// Bytes from lower- or upper-case hex; nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case 48...57: digit - 48
            case 97...102: digit - 87
            case 65...70: digit - 55
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for pair in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(digits[pair]), let low = value(digits[pair + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self = bytes
    }
}
