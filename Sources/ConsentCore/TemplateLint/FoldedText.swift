import Foundation

/// A body folded for matching (lower-cased, diacritics removed, apostrophes
/// and whitespace normalised) with a map from each UTF-16 unit of the folded
/// text back to the Unicode-scalar offset in the original body.
struct FoldedText {
    let original: [Unicode.Scalar]
    let folded: String
    /// `origin[i]` is the original scalar offset that produced folded UTF-16
    /// unit `i`; the last element is a sentinel equal to `original.count`.
    let origin: [Int]

    init(_ body: String) {
        let scalars = Array(body.unicodeScalars)
        var out = String.UnicodeScalarView()
        var origin: [Int] = []
        origin.reserveCapacity(scalars.count + 1)
        var previousWasSpace = false
        for (index, scalar) in scalars.enumerated() {
            if scalar.properties.isWhitespace {
                // Collapse whitespace runs (newlines, NBSP, tabs) to one space.
                if !previousWasSpace {
                    out.append(" ")
                    origin.append(index)
                    previousWasSpace = true
                }
                continue
            }
            for piece in Self.foldScalar(scalar, lowercase: true) {
                out.append(piece)
                for _ in 0..<piece.utf16.count { origin.append(index) }
                previousWasSpace = false
            }
        }
        origin.append(scalars.count)
        self.original = scalars
        self.folded = String(out)
        self.origin = origin
    }

    /// Folds literal characters of a regex pattern (no lower-casing, which
    /// would change escapes like `\S`; matching is case-insensitive instead).
    static func foldPattern(_ pattern: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in pattern.unicodeScalars {
            out.append(contentsOf: foldScalar(scalar, lowercase: false))
        }
        return String(out)
    }

    private static func foldScalar(_ scalar: Unicode.Scalar, lowercase: Bool) -> [Unicode.Scalar] {
        switch scalar.value {
        case 0x2018, 0x2019, 0x201B, 0x02BC, 0x00B4, 0x0060, 0x2032:
            return ["'"]
        case 0x201C, 0x201D, 0x201E, 0x00AB, 0x00BB:
            return ["\""]
        case 0x2010, 0x2011, 0x2012, 0x2013, 0x2014:
            return ["-"]
        case 0x2212: return ["-"]  // minus sign
        case 0x00DF: return ["s", "s"]  // ß
        case 0x1E9E: return ["S", "S"]  // ẞ
        case 0x0153: return ["o", "e"]  // œ
        case 0x0152: return ["O", "E"]  // Œ
        case 0x00E6: return ["a", "e"]  // æ
        case 0x00C6: return ["A", "E"]  // Æ
        default:
            break
        }
        if scalar.isASCII {
            if lowercase, let lower = scalar.properties.lowercaseMapping.unicodeScalars.first {
                return [lower]
            }
            return [scalar]
        }
        let base = lowercase ? scalar.properties.lowercaseMapping : String(scalar)
        return base.decomposedStringWithCanonicalMapping.unicodeScalars.filter {
            $0.properties.generalCategory != .nonspacingMark
        }
    }

    /// Matches of `regex` as ranges of original Unicode-scalar offsets.
    func matches(of regex: NSRegularExpression) -> [Range<Int>] {
        let whole = NSRange(location: 0, length: folded.utf16.count)
        return regex.matches(in: folded, options: [], range: whole).compactMap { result in
            let range = result.range
            guard range.location != NSNotFound,
                range.location >= 0,
                range.location + range.length < origin.count
            else { return nil }
            let start = origin[range.location]
            let end = origin[range.location + range.length]
            return start <= end ? start..<end : nil
        }
    }

    func excerpt(_ span: Range<Int>) -> String {
        let lower = max(0, min(span.lowerBound, original.count))
        let upper = max(lower, min(span.upperBound, original.count))
        var view = String.UnicodeScalarView()
        view.append(contentsOf: original[lower..<upper])
        return String(view)
    }
}
