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
