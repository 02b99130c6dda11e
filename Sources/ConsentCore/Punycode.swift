/// Punycode (RFC 3492): the Bootstring encoding that IDNA uses to write a Unicode domain label in ASCII, after the
/// `xn--` prefix. Only what an e-mail domain needs: no mixed-case annotations (IDNA labels are lower-cased before
/// they are encoded, and the decoder ignores the annotations, as section 3.4 allows).
///
/// Arithmetic is on UInt32 with every overflow checked, as section 6.4 asks: input that would overflow is refused
/// (nil), never wrapped into a different label.
public enum Punycode {
    // The parameter values of section 5.
    private static let base: UInt32 = 36
    private static let tMin: UInt32 = 1
    private static let tMax: UInt32 = 26
    private static let skew: UInt32 = 38
    private static let damp: UInt32 = 700
    private static let initialBias: UInt32 = 72
    private static let initialN: UInt32 = 0x80
    private static let delimiter: Unicode.Scalar = "-"

    /// The Punycode of `scalars` (without `xn--`), or nil when the input is too long to encode without overflow.
    /// Basic code points (ASCII) are copied as they are, so an all-ASCII input comes back with a trailing `-`.
    public static func encode(_ scalars: some Sequence<Unicode.Scalar>) -> String? {
        let input = scalars.map(\.value)
        var output = String.UnicodeScalarView(input.lazy.filter { $0 < initialN }.compactMap(Unicode.Scalar.init))
        let basicCount = UInt32(output.count)
        if basicCount > 0 { output.append(delimiter) }

        var n = initialN
        var delta: UInt32 = 0
        var bias = initialBias
        var handled = basicCount
        while handled < input.count {
            // The smallest code point not yet handled; there is one, since fewer than all are handled.
            guard let next = input.lazy.filter({ $0 >= n }).min() else { return nil }
            guard let step = checked((next - n).multipliedReportingOverflow(by: handled + 1)),
                let stepped = checked(delta.addingReportingOverflow(step))
            else { return nil }
            delta = stepped
            n = next
            for value in input {
                if value < n {
                    guard let incremented = checked(delta.addingReportingOverflow(1)) else { return nil }
                    delta = incremented
                }
                guard value == n else { continue }
                var q = delta
                var k = base
                while true {
                    let t = threshold(k, bias: bias)
                    if q < t { break }
                    output.append(digit(t + (q - t) % (base - t)))
                    q = (q - t) / (base - t)
                    k += base
                }
                output.append(digit(q))
                bias = adapt(delta, points: handled + 1, first: handled == basicCount)
                delta = 0
                handled += 1
            }
            guard let incremented = checked(delta.addingReportingOverflow(1)) else { return nil }
            delta = incremented
            n += 1
        }
        return String(output)
    }

    /// The Unicode label that `text` (without `xn--`) encodes, or nil when it is not valid Punycode: a non-basic
    /// code point before the last `-`, a character that is not a digit after it, a truncated number, an overflow,
    /// or a decoded value that is basic, a surrogate or beyond U+10FFFF.
    public static func decode(_ text: some StringProtocol) -> String? {
        let input = Array(text.unicodeScalars)
        let split = input.lastIndex(of: delimiter) ?? 0
        var output = input[..<split].map(\.value)
        guard output.allSatisfy({ $0 < initialN }) else { return nil }

        var n = initialN
        var i: UInt32 = 0
        var bias = initialBias
        var position = split > 0 ? split + 1 : 0
        while position < input.count {
            let oldI = i
            var weight: UInt32 = 1
            var k = base
            while true {
                guard position < input.count, let value = digitValue(input[position]) else { return nil }
                position += 1
                guard let product = checked(value.multipliedReportingOverflow(by: weight)),
                    let sum = checked(i.addingReportingOverflow(product))
                else { return nil }
                i = sum
                let t = threshold(k, bias: bias)
                if value < t { break }
                guard let widened = checked(weight.multipliedReportingOverflow(by: base - t)) else { return nil }
                weight = widened
                k += base
            }
            let length = UInt32(output.count) + 1
            bias = adapt(i - oldI, points: length, first: oldI == 0)
            guard let advanced = checked(n.addingReportingOverflow(i / length)) else { return nil }
            n = advanced
            i %= length
            guard n >= initialN, Unicode.Scalar(n) != nil else { return nil }
            output.insert(n, at: Int(i))
            i += 1
        }
        return String(String.UnicodeScalarView(output.compactMap(Unicode.Scalar.init)))
    }

    /// Section 6.1.
    private static func adapt(_ delta: UInt32, points: UInt32, first: Bool) -> UInt32 {
        var delta = first ? delta / damp : delta / 2
        delta += delta / points
        var k: UInt32 = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    private static func threshold(_ k: UInt32, bias: UInt32) -> UInt32 {
        k <= bias ? tMin : k >= bias + tMax ? tMax : k - bias
    }

    /// 0–25 are a–z, 26–35 are 0–9 (lower case: IDNA's A-labels are compared in lower case).
    private static func digit(_ value: UInt32) -> Unicode.Scalar {
        Unicode.Scalar(UInt8(value < 26 ? value + 0x61 : value - 26 + 0x30))
    }

    /// Either case decodes (section 5).
    private static func digitValue(_ scalar: Unicode.Scalar) -> UInt32? {
        switch scalar.value {
        case 0x30...0x39: scalar.value - 0x30 + 26
        case 0x41...0x5A: scalar.value - 0x41
        case 0x61...0x7A: scalar.value - 0x61
        default: nil
        }
    }

    private static func checked(_ result: (partialValue: UInt32, overflow: Bool)) -> UInt32? {
        result.overflow ? nil : result.partialValue
    }
}
